package runtimecli

import (
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// signalForwarder relays the signals this process gets to the container,
// the way `runc run` does in the foreground.
//
// Registering for every signal is slow: os/signal hands each one to a
// goroutine locked to its own thread and waits for it, two thread switches
// per signal, 65 signals each way (measured 0.7-2.9 ms for Notify and as
// much for Stop on a busy 2-core host, a quarter of a whole `run`). So
// Notify runs in the background, overlapped with the container's creation,
// and Stop is not waited for (the process is about to exit).
type signalForwarder struct {
	ch    chan os.Signal
	ready chan struct{} // closed once Notify has returned
}

func forwardSignals() *signalForwarder {
	f := &signalForwarder{ch: make(chan os.Signal, 32), ready: make(chan struct{})}
	go func() {
		signal.Notify(f.ch)
		close(f.ready)
	}()
	return f
}

// waitReady returns once every signal is caught; call it before the
// container's program may run, so none sent after that is lost.
func (f *signalForwarder) waitReady() { <-f.ready }

func (f *signalForwarder) stop() {
	go func() {
		<-f.ready
		signal.Stop(f.ch)
	}()
}

// wait reaps pid, forwarding signals through send meanwhile, and returns
// its exit code (128+signal when killed, as shells report it).
func (f *signalForwarder) wait(pid int, tty *terminal, send func(unix.Signal)) int {
	f.waitReady()
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err == unix.EINTR {
				continue
			}
			break
		}
		done <- ws
	}()
	for {
		select {
		case ws := <-done:
			if tty != nil {
				tty.finish()
			}
			return exitCode(ws)
		case s := <-f.ch:
			sig, ok := s.(syscall.Signal)
			if !ok {
				continue
			}
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// Ours, not the container's (SIGURG: Go's preemption).
			case unix.SIGWINCH:
				if tty != nil {
					tty.resize()
				}
			default:
				send(sig)
			}
		}
	}
}

func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

// terminal connects our stdio to a container's pty master.
type terminal struct {
	master  *os.File
	restore *term.State
	outDone chan struct{}
}

func (t *terminal) attach(m *os.File) error {
	t.master = m
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			t.restore = st
		}
		t.resize()
	}
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	t.outDone = make(chan struct{})
	go func() {
		// Ends with EIO once every slave fd in the container is closed.
		_, _ = io.Copy(os.Stdout, m)
		close(t.outDone)
	}()
	return nil
}

func (t *terminal) resize() {
	if t.master == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// finish drains the container's last output and restores our terminal.
func (t *terminal) finish() {
	if t.outDone != nil {
		select {
		case <-t.outDone:
		case <-time.After(time.Second):
		}
	}
	if t.restore != nil {
		_ = term.Restore(int(os.Stdin.Fd()), t.restore)
	}
}
