package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/fixture"
	"berth/internal/nsinit"
)

// TestMain lets the test binary serve as the container init and exec child.
func TestMain(m *testing.M) {
	nsinit.Init()
	code := m.Run()
	if sharedRootfs != "" {
		os.RemoveAll(filepath.Dir(sharedRootfs))
	}
	os.Exit(code)
}

var (
	rootfsOnce   sync.Once
	sharedRootfs string
	rootfsErr    error
)

// requireRoot skips tests that create namespaces, mounts and cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts and cgroups")
	}
}

// busybox returns a busybox rootfs shared by the tests of this run.
func busybox(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-runtime-test-")
		if err != nil {
			rootfsErr = err
			return
		}
		sharedRootfs = filepath.Join(dir, "rootfs")
		rootfsErr = fixture.BusyboxRootfs(sharedRootfs)
	})
	if rootfsErr != nil {
		t.Fatal(rootfsErr)
	}
	return sharedRootfs
}

// ownRootfs builds a fresh busybox rootfs that a test may change.
func ownRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := fixture.BusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// testSpec is `runc spec` with Docker's capabilities, no terminal, a
// writable root and args.
func testSpec(t *testing.T, args ...string) *specs.Spec {
	t.Helper()
	s := Example()
	s.Root = &specs.Root{Path: busybox(t)}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps,
	}
	s.Hostname = "berth-test"
	return s
}

func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	requireRoot(t)
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		states, _ := r.List()
		for _, s := range states {
			if err := r.Delete(s.ID, true); err != nil {
				t.Errorf("cleanup: delete %s: %v", s.ID, err)
			}
		}
	})
	return r
}

var nonID = regexp.MustCompile(`[^\w.-]+`)

func testID(t *testing.T) string {
	return nonID.ReplaceAllString(t.Name(), "-")
}

// container is a created container whose output the test collects.
type container struct {
	t   *testing.T
	r   *Runtime
	id  string
	pid int
	out *lockedBuffer
	wg  sync.WaitGroup
	ws  *unix.WaitStatus
}

// create makes a container with stdout and stderr captured.
func create(t *testing.T, r *Runtime, id string, s *specs.Spec) *container {
	t.Helper()
	c, err := tryCreate(t, r, id, s, CreateOpts{})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	return c
}

func tryCreate(t *testing.T, r *Runtime, id string, s *specs.Spec, o CreateOpts) (*container, error) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	o.Spec, o.IO.Stdout, o.IO.Stderr = s, pw, pw
	if o.Bundle == "" {
		o.Bundle = t.TempDir()
	}
	pid, err := r.Create(id, o)
	if err != nil {
		pr.Close()
		return nil, err
	}
	c := &container{t: t, r: r, id: id, pid: pid, out: &lockedBuffer{}}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, _ = io.Copy(c.out, pr)
		pr.Close()
	}()
	t.Cleanup(func() {
		if c.ws == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			c.wait()
		}
	})
	return c, nil
}

// wait reaps the init and returns its exit code (128+signal if killed).
func (c *container) wait() int {
	if c.ws == nil {
		var ws unix.WaitStatus
		done := make(chan struct{})
		go func() {
			for {
				if _, err := unix.Wait4(c.pid, &ws, 0, nil); err != unix.EINTR {
					break
				}
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = unix.Kill(c.pid, unix.SIGKILL)
			<-done
			c.t.Errorf("container %s did not exit within 30s", c.id)
		}
		c.ws = &ws
		c.wg.Wait()
	}
	if c.ws.Signaled() {
		return 128 + int(c.ws.Signal())
	}
	return c.ws.ExitStatus()
}

// run creates, starts, waits for and deletes a container; it returns the
// combined output and the exit code.
func run(t *testing.T, r *Runtime, s *specs.Spec) (string, int) {
	t.Helper()
	id := fmt.Sprintf("%s-%d", testID(t), time.Now().UnixNano()%1e6)
	c := create(t, r, id, s)
	if err := r.Start(id); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	code := c.wait()
	if err := r.Delete(id, false); err != nil {
		t.Errorf("delete %s: %v", id, err)
	}
	return c.out.String(), code
}

// sh runs a shell command in a default container and fails on a non-zero exit.
func sh(t *testing.T, r *Runtime, script string) string {
	t.Helper()
	out, code := run(t, r, testSpec(t, "sh", "-c", script))
	if code != 0 {
		t.Fatalf("%q exited %d: %s", script, code, out)
	}
	return out
}

// lockedBuffer collects output that a test may read while it grows.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
