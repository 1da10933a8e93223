package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- start ----

type startOptions struct {
	attach     bool
	openStdin  bool
	detachKeys string
	containers []string
}

func newStartCommand(c *Cli) *cobra.Command {
	var opts startOptions
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			return runStart(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	flags.BoolVarP(&opts.openStdin, "interactive", "i", false, "Attach container's STDIN")
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func runStart(ctx context.Context, c *Cli, opts *startOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	if !opts.attach && !opts.openStdin {
		var failed []string
		for _, name := range opts.containers {
			if _, err := apiClient.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
				fmt.Fprintln(c.Err(), errText(err))
				failed = append(failed, name)
				continue
			}
			fmt.Fprintln(c.Out(), name)
		}
		if len(failed) > 0 {
			return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
		}
		return nil
	}
	if len(opts.containers) > 1 {
		return errors.New("you cannot start and attach multiple containers at once")
	}

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	res, err := apiClient.ContainerInspect(ctx, opts.containers[0], client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := res.Container
	tty := ctr.Config != nil && ctr.Config.Tty
	if !tty {
		stop := forwardAllSignals(ctx, c, apiClient, ctr.ID)
		defer stop()
	}
	stdin := opts.openStdin && ctr.Config != nil && ctr.Config.OpenStdin
	if stdin {
		if err := c.In().CheckTty(true, tty); err != nil {
			return err
		}
	}
	resp, err := apiClient.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: opts.detachKeys,
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	streamer := &hijackedStreamer{out: c.Out(), errOut: c.Err(), resp: resp.HijackedResponse, tty: tty, detachKeys: opts.detachKeys}
	if stdin {
		streamer.in = c.In()
	}
	errCh := make(chan error, 1)
	go func() { errCh <- streamer.stream(ctx) }()

	autoRemove := ctr.HostConfig != nil && ctr.HostConfig.AutoRemove
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	statusC := waitExitOrRemoved(waitCtx, c, apiClient, ctr.ID, autoRemove)
	if _, err := apiClient.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-errCh
		if autoRemove {
			select {
			case <-statusC:
			case <-time.After(autoRemoveGrace):
			}
		}
		return err
	}
	if tty && c.Out().IsTerminal() {
		if err := monitorTtySize(ctx, c, containerResizer(apiClient, ctr.ID)); err != nil {
			fmt.Fprintln(c.Err(), "Error monitoring TTY size:", err)
		}
	}
	if err := <-errCh; err != nil {
		if errors.Is(err, errEscape) {
			return nil
		}
		return err
	}
	if status := <-statusC; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

// ---- attach ----

type attachOptions struct {
	noStdin    bool
	proxy      bool
	detachKeys string
	container  string
}

func newAttachCommand(c *Cli) *cobra.Command {
	var opts attachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			return runAttach(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.noStdin, "no-stdin", false, "Do not attach STDIN")
	flags.BoolVar(&opts.proxy, "sig-proxy", true, "Proxy all received signals to the process")
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func inspectRunning(ctx context.Context, apiClient client.APIClient, name string) (container.InspectResponse, error) {
	res, err := apiClient.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return res.Container, err
	}
	st := res.Container.State
	switch {
	case st == nil || !st.Running:
		return res.Container, errors.New("You cannot attach to a stopped container, start it first")
	case st.Paused:
		return res.Container, errors.New("You cannot attach to a paused container, unpause it first")
	case st.Restarting:
		return res.Container, errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return res.Container, nil
}

func runAttach(ctx context.Context, c *Cli, opts *attachOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	// Ask for the exit status first so that it cannot be missed.
	wait := apiClient.ContainerWait(ctx, opts.container, client.ContainerWaitOptions{})
	ctr, err := inspectRunning(ctx, apiClient, opts.container)
	if err != nil {
		return err
	}
	tty := ctr.Config != nil && ctr.Config.Tty
	stdin := !opts.noStdin && ctr.Config != nil && ctr.Config.OpenStdin
	if err := c.In().CheckTty(!opts.noStdin, tty); err != nil {
		return err
	}
	if opts.proxy && !tty {
		stop := forwardAllSignals(ctx, c, apiClient, opts.container)
		defer stop()
	}
	resp, err := apiClient.ContainerAttach(ctx, opts.container, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: opts.detachKeys,
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	// The container may have stopped between the check and the attach.
	if _, err := inspectRunning(ctx, apiClient, opts.container); err != nil {
		return err
	}
	if tty && c.Out().IsTerminal() {
		// A size one larger first forces the application to redraw.
		if h, w := c.Out().GetTtySize(); h > 0 && w > 0 {
			_, _ = apiClient.ContainerResize(ctx, opts.container, client.ContainerResizeOptions{Height: h + 1, Width: w + 1})
		}
		_ = monitorTtySize(ctx, c, containerResizer(apiClient, opts.container))
	}
	streamer := &hijackedStreamer{out: c.Out(), errOut: c.Err(), resp: resp.HijackedResponse, tty: tty, detachKeys: opts.detachKeys}
	if stdin {
		streamer.in = c.In()
	}
	if err := streamer.stream(ctx); err != nil {
		return err
	}
	select {
	case r := <-wait.Result:
		if r.Error != nil {
			return errors.New(r.Error.Message)
		}
		if r.StatusCode != 0 {
			return StatusError{StatusCode: int(r.StatusCode)}
		}
	case err := <-wait.Error:
		return err
	}
	return nil
}
