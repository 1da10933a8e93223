package runtime

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/fixture"
)

// These cover the spec cases the OCI runtime-tools validation suite found
// (scripts/runtime-validation.sh runs the suite itself).

// execOut runs args in container id and returns its output and exit code.
func execOut(t *testing.T, r *Runtime, id string, args ...string) (string, int) {
	t.Helper()
	pr, pw, _ := os.Pipe()
	p := testSpec(t, args...).Process
	pid, err := r.Exec(id, ExecOpts{Process: p, IO: IO{Stdout: pw, Stderr: pw}})
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("exec %v in %s: %v", args, id, err)
	}
	out, _ := io.ReadAll(pr)
	pr.Close()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return string(out), ws.ExitStatus()
}

// A spec without a mount namespace shares the caller's: the rootfs is set
// up there and entered with chroot; exec chroots too; delete removes the
// mounts, which nothing else would.
func TestNoMountNamespace(t *testing.T) {
	r := newRuntime(t)
	rootfs := ownRootfs(t)
	s := testSpec(t, "sh", "-c", "echo inside > /marker; exec sleep 100")
	s.Root.Path = rootfs
	s.Hostname = ""
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
	c := create(t, r, "nomnt", s)
	if err := r.Start("nomnt"); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(rootfs)); len(mounts) == 0 {
		t.Error("no mounts under the rootfs in our namespace: was a mount namespace made?")
	}
	// Start returned after the exec: the marker is the first command.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(rootfs, "marker")); err == nil && string(b) == "inside\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not write /marker into its rootfs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, code := execOut(t, r, "nomnt", "cat", "/marker"); code != 0 || out != "inside\n" {
		t.Errorf("exec in the chroot: exit %d, %q", code, out)
	}
	if err := r.Delete("nomnt", true); err != nil {
		t.Fatal(err)
	}
	c.wait()
	if mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(rootfs)); len(mounts) != 0 {
		t.Errorf("delete left %d mounts under the rootfs, e.g. %s", len(mounts), mounts[0].Mountpoint)
	}
}

// Start returns only once the init has exec'd the user program, so a
// signal sent right after start reaches the program, not the runtime.
func TestStartReturnsAfterExec(t *testing.T) {
	r := newRuntime(t)
	for i := 0; i < 5; i++ {
		c := create(t, r, "startexec", testSpec(t, "sleep", "100"))
		if err := r.Start("startexec"); err != nil {
			t.Fatal(err)
		}
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/comm")
		if strings.TrimSpace(string(comm)) != "sleep" {
			t.Fatalf("right after start the init is %q, want sleep", comm)
		}
		if err := r.Delete("startexec", true); err != nil {
			t.Fatal(err)
		}
		c.wait()
	}
}

// The created init holds no fd of the read-only berth binary it was
// exec'd from: the close of the last one dissolves that detached mount and
// waits for an RCU grace period, which must not fall into the user
// program's start (after `start` returned; runtime-tools' killsig lost its
// signal to it).
func TestInitHoldsNoBinaryFD(t *testing.T) {
	r := newRuntime(t)
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t)
	c := create(t, r, id, testSpec(t, "true"))
	t.Cleanup(func() { _ = r.Delete(id, true) })
	proc := "/proc/" + strconv.Itoa(c.pid)
	// The comparison can match: the init's own executable is that binary.
	if exe, err := os.Stat(proc + "/exe"); err != nil || !os.SameFile(exe, self) {
		t.Fatalf("init %d: exe %v (%v), want the runtime's binary", c.pid, exe, err)
	}
	ents, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if fi, err := os.Stat(proc + "/fd/" + e.Name()); err == nil && os.SameFile(fi, self) {
			link, _ := os.Readlink(proc + "/fd/" + e.Name())
			t.Errorf("init %d still holds fd %s -> %s, the berth binary", c.pid, e.Name(), link)
		}
	}
}

// RLIMIT_AS of 1 GiB would starve the Go runtime of the init: it is set
// last, just before execve.
func TestAddressSpaceRlimit(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", "ulimit -v; ulimit -Hv")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: 1 << 30, Hard: 2 << 30}}
	for i := 0; i < 3; i++ {
		out, code := run(t, r, s)
		if code != 0 || out != "1048576\n2097152\n" {
			t.Fatalf("exit %d, ulimit -v/-Hv printed %q; want 1048576 and 2097152 (KiB)", code, out)
		}
	}
}

// With a user namespace that does not map host root, the child becomes
// root of the namespace before its re-exec, or it could not set up the
// container (sethostname, mounts: EPERM).
func TestUserNamespaceWithoutHostRoot(t *testing.T) {
	r := newRuntime(t)
	dir, err := os.MkdirTemp("", "berth-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // uid 1000 must reach the rootfs
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := fixture.BusyboxRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	s := testSpec(t, "sh", "-c", "id -u; hostname; cat /proc/self/uid_map")
	s.Root.Path = rootfs
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 2000}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 3000}}
	out, code := run(t, r, s)
	if code != 0 || !strings.Contains(out, "0\nberth-test\n") || !strings.Contains(out, "1000") {
		t.Errorf("exit %d: %s", code, out)
	}
}

// A spec device of type p (a fifo) is created, and left out of the device
// cgroup rules, which know only b and c.
func TestFifoDevice(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", "test -p /dev/fifo0 && echo fifo")
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fifo0", Type: "p"}}
	if out, code := run(t, r, s); code != 0 || out != "fifo\n" {
		t.Errorf("exit %d: %q", code, out)
	}
}

// A failing poststop (or poststart) hook is a warning: the later hooks
// still run.
func TestFailingHookDoesNotStopTheRest(t *testing.T) {
	r := newRuntime(t)
	dir := t.TempDir()
	s := testSpec(t, "true")
	s.Hooks = &specs.Hooks{
		Poststart: []specs.Hook{{Path: "/bin/false"}, {Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + filepath.Join(dir, "poststart")}}},
		Poststop:  []specs.Hook{{Path: "/bin/false"}, {Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + filepath.Join(dir, "poststop")}}},
	}
	if out, code := run(t, r, s); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, h := range []string{"poststart", "poststop"} {
		if _, err := os.Stat(filepath.Join(dir, h)); err != nil {
			t.Errorf("the %s hook after a failing one did not run: %v", h, err)
		}
	}
}

// rootfsPropagation "shared" works although pivot_root refuses a shared
// parent mount.
func TestSharedRootfsPropagation(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo")
	s.Linux.RootfsPropagation = "shared"
	out, code := run(t, r, s)
	if code != 0 || !strings.Contains(out, "shared:") {
		t.Errorf("exit %d: root mount %q, want it shared", code, out)
	}
}
