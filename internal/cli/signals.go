package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// forwardAllSignals relays every signal this process receives to the
// container (--sig-proxy), by name as docker does (`kill?signal=WINCH`).
// It returns a stop function.
func forwardAllSignals(ctx context.Context, c *Cli, apiClient client.APIClient, containerID string) func() {
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigc:
				sys, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				// SIGCHLD and SIGPIPE are ours, SIGURG is the Go runtime's.
				if sys == unix.SIGCHLD || sys == unix.SIGPIPE || sys == unix.SIGURG {
					continue
				}
				name := strings.TrimPrefix(unix.SignalName(sys), "SIG")
				if name == "" {
					fmt.Fprintf(c.Err(), "Unsupported signal: %v. Discarding.\n", s)
					continue
				}
				_, _ = apiClient.ContainerKill(ctx, containerID, client.ContainerKillOptions{Signal: name})
			}
		}
	}()
	return func() {
		signal.Stop(sigc)
		cancel()
	}
}

// resizeFunc sends a terminal size to a container or exec.
type resizeFunc func(ctx context.Context, height, width uint) error

func containerResizer(apiClient client.APIClient, id string) resizeFunc {
	return func(ctx context.Context, h, w uint) error {
		_, err := apiClient.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

func execResizer(apiClient client.APIClient, id string) resizeFunc {
	return func(ctx context.Context, h, w uint) error {
		_, err := apiClient.ExecResize(ctx, id, client.ExecResizeOptions{Height: h, Width: w})
		return err
	}
}

// monitorTtySize sends the current terminal size now (retrying briefly, the
// process may not be ready yet) and again on every SIGWINCH.
func monitorTtySize(ctx context.Context, c *Cli, resize resizeFunc) error {
	sendSize := func() error {
		h, w := c.Out().GetTtySize()
		if h == 0 && w == 0 {
			return nil
		}
		return resize(ctx, h, w)
	}
	var err error
	for i := 0; i < 5; i++ {
		if err = sendSize(); err == nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("failed to resize tty, using default size: %w", err)
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGWINCH)
	go func() {
		defer signal.Stop(sigc)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigc:
				_ = sendSize()
			}
		}
	}()
	return nil
}
