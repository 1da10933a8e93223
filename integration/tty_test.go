package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// These scenarios run the CLIs under a real pseudo-terminal, the way a user
// types at them: -it sessions, window size, exit codes, detaching.

// ptySession is a CLI process whose stdio is the slave side of a pty.
type ptySession struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, valid once done is closed
}

// startPTY starts bin args under a pty of rows x cols.
func (e *env) startPTY(t *testing.T, rows, cols uint16, bin string, args ...string) *ptySession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TERM=xterm", "BERTH_HOST=unix://"+e.sock, "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		cancel()
		t.Fatalf("start %s under a pty: %v", bin, err)
	}
	s := &ptySession{t: t, cmd: cmd, pty: f, done: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return // EIO once the slave side is closed everywhere
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
		cancel()
		f.Close()
		<-readDone
	})
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// send types text at the terminal.
func (s *ptySession) send(text string) {
	s.t.Helper()
	if _, err := s.pty.Write([]byte(text)); err != nil {
		s.t.Fatalf("write to the pty: %v", err)
	}
}

// expect waits until the terminal output contains want.
func (s *ptySession) expect(want string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.output(), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("terminal never showed %q; it showed:\n%q", want, s.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitCode waits for the process to end and returns its exit status.
func (s *ptySession) exitCode() int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.t.Fatalf("CLI did not exit; terminal showed:\n%q", s.output())
	}
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode()
	}
	if s.err != nil {
		s.t.Fatalf("wait: %v", s.err)
	}
	return 0
}

// interactiveShell types commands into an -it shell started by args and
// checks what comes back: computed output (not the echo of the typed line),
// the terminal size, a tty on stdin and the exit code of `exit 3`.
func interactiveShell(t *testing.T, e *env, bin string, args ...string) {
	t.Helper()
	s := e.startPTY(t, 33, 101, bin, args...)
	s.send("echo result-$((6*7))\n")
	s.expect("result-42")
	s.send("stty size\n")
	s.expect("33 101")
	s.send("tty; test -t 0 && echo stdin-is-tty-$((2*4))\n")
	s.expect("stdin-is-tty-8")
	if !strings.Contains(s.output(), "/dev/pts/") {
		t.Errorf("tty inside the container is not a /dev/pts device:\n%q", s.output())
	}
	// Resize the outer terminal: the CLI forwards SIGWINCH as a resize.
	if err := pty.Setsize(s.pty, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s.send("stty size\n")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(s.output(), "40 120")
	})
	s.send("exit 3\n")
	if code := s.exitCode(); code != 3 {
		t.Fatalf("exit 3 in the shell: CLI exited %d; terminal showed:\n%q", code, s.output())
	}
}

func TestTTYDockerRunInteractive(t *testing.T) {
	e := daemonEnv(t)
	interactiveShell(t, e, dockerCLI(t), "run", "-it", "--rm", "busybox", "sh")
}

func TestTTYBerthRunInteractive(t *testing.T) {
	e := daemonEnv(t)
	interactiveShell(t, e, e.bin, "run", "-it", "--rm", "busybox", "sh")
}

func TestTTYExecInteractive(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sleep", "300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	for _, bin := range []string{dockerCLI(t), e.bin} {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			interactiveShell(t, e, bin, "exec", "-it", name, "sh")
		})
	}
	// The container is untouched by the exec sessions ending.
	if st := must(t, e.docker(t, "inspect", "-f", "{{.State.Running}}", name)).stdout; st != "true\n" {
		t.Fatalf("container after exec sessions: running=%q", st)
	}
}

// TestTTYDetach types ctrl-p ctrl-q: the CLI leaves with 0, the container
// keeps running, and attaching again reaches the same shell.
func TestTTYDetach(t *testing.T) {
	e := daemonEnv(t)
	for _, bin := range []string{dockerCLI(t), e.bin} {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			name := uniq(t)
			t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
			s := e.startPTY(t, 24, 80, bin, "run", "-it", "--name", name, "busybox", "sh")
			s.send("export MARK=still-$((1+1))\n")
			s.send("echo ready-$((2+3))\n")
			s.expect("ready-5")
			s.send("\x10\x11")
			if code := s.exitCode(); code != 0 {
				t.Fatalf("detach: CLI exited %d; terminal showed:\n%q", code, s.output())
			}
			if st := must(t, e.docker(t, "inspect", "-f", "{{.State.Running}}", name)).stdout; st != "true\n" {
				t.Fatalf("after detaching the container must keep running, running=%q", st)
			}
			// The shell is the same process: the variable set before detaching is there.
			a := e.startPTY(t, 24, 80, bin, "attach", name)
			a.send("echo $MARK\n")
			a.expect("still-2")
			a.send("exit 0\n")
			if code := a.exitCode(); code != 0 {
				t.Fatalf("attach then exit 0: CLI exited %d; terminal showed:\n%q", code, a.output())
			}
			w := must(t, e.docker(t, "wait", name))
			if w.stdout != "0\n" {
				t.Fatalf("wait after the shell exited: %q", w.stdout)
			}
		})
	}
}

// TestTTYCtrlCReachesContainer checks that ctrl-c in an -it session goes
// through the tty to the container's foreground process, not to the CLI:
// the sleep ends at once and the shell lives on.
func TestTTYCtrlCReachesContainer(t *testing.T) {
	e := daemonEnv(t)
	s := e.startPTY(t, 24, 80, dockerCLI(t), "run", "-it", "--rm", "busybox", "sh")
	s.send("echo up-$((4*4))\n")
	s.expect("up-16")
	start := time.Now()
	s.send("sleep 100\n")
	time.Sleep(300 * time.Millisecond)
	s.send("\x03")
	s.send("echo alive-$((3*3))\n")
	s.expect("alive-9")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("sleep was not interrupted by ctrl-c (took %v)", d)
	}
	s.send("exit 0\n")
	if code := s.exitCode(); code != 0 {
		t.Fatalf("exit 0 after ctrl-c: CLI exited %d; terminal showed:\n%q", code, s.output())
	}
}
