package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/fixture"
)

func requireHelper(t *testing.T) {
	t.Helper()
	if !usernsHelperSupported() {
		t.Skipf("no user namespace helper on %s", goruntime.GOARCH)
	}
}

func TestUsernsHelperELFLayout(t *testing.T) {
	b := usernsHelperELF()
	if !bytes.HasPrefix(b, []byte("\x7fELF\x02\x01\x01")) || len(b) != 64+56+len(usernsHelperCode) {
		t.Fatalf("bad ELF header or size %d", len(b))
	}
	if len(usernsHelperCode) != 0x99 {
		t.Errorf("code is %#x bytes, the jump offsets assume 0x99", len(usernsHelperCode))
	}
}

// runHelper runs the helper from its sealed memfd with fd 3 = ns (if any).
func runHelper(t *testing.T, ns *os.File, args ...string) (string, int) {
	t.Helper()
	helper, err := usernsHelperFile()
	if err != nil {
		t.Fatal(err)
	}
	extra := []*os.File{ns, helper}
	if ns == nil {
		null, _ := os.Open(os.DevNull)
		defer null.Close()
		extra[0] = null
	}
	cmd := &exec.Cmd{Path: "/proc/self/fd/4", Args: append([]string{"berth-userns"}, args...), ExtraFiles: extra}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// The helper joins a user namespace, becomes its root and execs.
func TestUsernsHelperJoinsUserNamespace(t *testing.T) {
	requireRoot(t)
	requireHelper(t)
	holder := exec.Command("/bin/sleep", "100")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}},
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	out, code := runHelper(t, ns, "3", "/bin/busybox", "sh", "-c", "cat /proc/self/uid_map; id -u; id -g; readlink /proc/self/fd/3 || echo closed")
	f := strings.Fields(out)
	// The helper closed the ns fd (3): readlink finds nothing there.
	if code != 0 || strings.Join(f, " ") != "0 1000 1 0 0 closed" {
		t.Errorf("exit %d, output %q; want uid_map 0 1000 1, uid 0, gid 0, fd 3 closed", code, out)
	}
}

func TestUsernsHelperFailures(t *testing.T) {
	requireHelper(t)
	for _, args := range [][]string{
		{},                          // no arguments
		{"3"},                       // no program
		{"3", "/bin/true", "true"},  // fd 3 is not a user namespace
		{"77", "/bin/true", "true"}, // fd 77 is not open
	} {
		if out, code := runHelper(t, nil, args...); code != 127 {
			t.Errorf("helper %q: exit %d (%s), want 127", args, code, out)
		}
	}
}

// Exec into a container with its own user namespace, whose root is not
// host root: the process runs as the namespace's root, in the container's
// user, mount, UTS and PID namespaces.
func TestExecUserNamespace(t *testing.T) {
	requireHelper(t)
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
	s := testSpec(t, "sleep", "100")
	s.Root.Path = rootfs
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 2000}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 3000}}
	c := create(t, r, "usernsexec", s)
	if err := r.Start("usernsexec"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Delete("usernsexec", true); c.wait() })

	pr, pw, _ := os.Pipe()
	p := testSpec(t, "sh", "-c", `id -u; cat /proc/self/uid_map; hostname; cat /proc/1/comm; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt`).Process
	pid, err := r.Exec("usernsexec", ExecOpts{Process: p, IO: IO{Stdout: pw, Stderr: pw}})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(pr)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("exec exited %v (%v): %s", ws, err, out)
	}
	userNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", c.pid))
	mntNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", c.pid))
	f := strings.Fields(string(out))
	want := []string{"0", "0", "1000", "2000", "berth-test", "sleep", userNS, mntNS}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("exec output %q, want %q", f, want)
	}
}
