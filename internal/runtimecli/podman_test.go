package runtimecli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"berth/internal/fixture"
)

// podman drives a private podman (its own root, runroot and tmpdir under a
// test directory) whose OCI runtime is berth-runtime.
type podman struct {
	t        *testing.T
	bin      string
	dir      string // everything podman writes
	rtRoot   string // berth-runtime's --root, passed by podman
	baseArgs []string
}

// podman 4.3 raises RLIMIT_NOFILE and RLIMIT_NPROC in every container by
// default; without CAP_SYS_RESOURCE (as on the development host) raising a
// hard limit fails. Ask for limits that need no raising.
var podmanUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

func newPodman(t *testing.T) *podman {
	t.Helper()
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (apt-get install podman)")
	}
	if _, err := exec.LookPath("conmon"); err != nil {
		t.Skip("conmon is not installed (podman needs it)")
	}
	berth := berthBinary(t) // skips without root
	// Not t.TempDir: podman's overlay storage must be unmounted before
	// the directory can go, which the cleanup below does in order.
	dir, err := os.MkdirTemp("", "berth-podman-test-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podman{t: t, bin: bin, dir: dir, rtRoot: filepath.Join(dir, "runtime")}
	t.Cleanup(p.cleanup)
	// The runtime is berth-runtime with its state in the test directory.
	// A wrapper, not podman's --runtime-flag: podman 4.3 drops that flag
	// from the exit command conmon runs (`podman container cleanup`), whose
	// `delete --force` would then look in the default root.
	wrapper := filepath.Join(dir, "berth-runtime")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --root %s \"$@\"\n",
		filepath.Join(filepath.Dir(berth), "berth-runtime"), p.rtRoot)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p.baseArgs = []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--runtime", wrapper,
	}
	return p
}

// run runs podman and returns its stdout, stderr and exit code.
func (p *podman) run(args ...string) (string, string, int) {
	p.t.Helper()
	cmd := exec.Command(p.bin, append(append([]string{}, p.baseArgs...), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("podman %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, errs, code := p.run(args...)
	if code != 0 {
		p.t.Fatalf("podman %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// cleanup removes every container and image, then podman's storage: its
// overlay mounts first, then the directory. The cgroup parent podman made
// (libpod_parent) goes if nothing else uses it.
func (p *podman) cleanup() {
	p.run("rm", "--all", "--force", "--time", "0")
	p.run("rmi", "--all", "--force")
	if ids, _ := os.ReadDir(p.rtRoot); len(ids) > 0 {
		p.t.Errorf("berth-runtime state left for %d containers after podman rm", len(ids))
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(p.dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH)
	}
	if left, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(p.dir)); len(left) > 0 {
		p.t.Errorf("podman storage still has %d mounts under %s; left it in place", len(left), p.dir)
	} else if err := os.RemoveAll(p.dir); err != nil {
		p.t.Errorf("remove podman storage: %v", err)
	}
	// podman's cgroup parent and its conmon group; rmdir fails while
	// anything (another podman user) still uses them, as it should.
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
	for _, d := range append(cg, "/sys/fs/cgroup/libpod_parent") {
		_ = os.Remove(filepath.Join(d, "conmon"))
		_ = os.Remove(d)
	}
}

// TestPodmanRunsBerthRuntime has podman 4 (through conmon) drive
// berth-runtime the way it drives runc: create --bundle --pid-file, start,
// exec --process --detach [--tty --console-socket], pause, resume, kill,
// delete --force.
func TestPodmanRunsBerthRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts podman containers (a few seconds)")
	}
	p := newPodman(t)

	img := filepath.Join(p.dir, "busybox.tar")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := fixture.BusyboxImage(f, "localhost/berth-busybox:test"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p.must("load", "-i", img)
	const image = "localhost/berth-busybox:test"
	run := append([]string{"run", "--network", "none"}, podmanUlimits...)

	t.Run("foreground", func(t *testing.T) {
		out := p.must(append(append(run, "--rm"), image, "sh", "-c", "echo hello-from-berth pid=$$")...)
		if strings.TrimSpace(out) != "hello-from-berth pid=1" {
			t.Errorf("output %q: want the greeting from pid 1", out)
		}
	})

	t.Run("exit code", func(t *testing.T) {
		if _, _, code := p.run(append(append(run, "--rm"), image, "sh", "-c", "exit 3")...); code != 3 {
			t.Errorf("exit code %d, want 3", code)
		}
	})

	t.Run("detached, exec, stop", func(t *testing.T) {
		id := strings.TrimSpace(p.must(append(append(run, "-d", "--name", "berth-podman"), image, "sleep", "100")...))
		// The container's state is in berth-runtime's root: berth, not
		// runc, runs it.
		if _, err := os.Stat(filepath.Join(p.rtRoot, id, "state.json")); err != nil {
			t.Errorf("berth-runtime has no state for %s: %v", id, err)
		}
		if st := strings.TrimSpace(p.must("inspect", "-f", "{{.State.Status}}", "berth-podman")); st != "running" {
			t.Errorf("status %q, want running", st)
		}
		if out := p.must("exec", "berth-podman", "sh", "-c", "echo exec-ok; hostname"); !strings.Contains(out, "exec-ok") {
			t.Errorf("exec output %q", out)
		}
		if out := p.must("exec", "-t", "berth-podman", "tty"); !strings.Contains(out, "/dev/pts/") {
			t.Errorf("exec -t: tty printed %q, want a pty", out)
		}
		p.must("pause", "berth-podman")
		if st := strings.TrimSpace(p.must("inspect", "-f", "{{.State.Status}}", "berth-podman")); st != "paused" {
			t.Errorf("status after pause %q, want paused", st)
		}
		p.must("unpause", "berth-podman")
		// sleep as pid 1 ignores SIGTERM: podman kills it after the timeout.
		p.must("stop", "-t", "1", "berth-podman")
		if st := strings.TrimSpace(p.must("inspect", "-f", "{{.State.Status}}", "berth-podman")); st != "exited" {
			t.Errorf("status after stop %q, want exited", st)
		}
		p.must("rm", "berth-podman")
		if _, err := os.Stat(filepath.Join(p.rtRoot, id)); !os.IsNotExist(err) {
			t.Errorf("berth-runtime state of %s left after rm (%v)", id, err)
		}
	})
}
