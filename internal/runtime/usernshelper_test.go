package runtime

import (
	"bytes"
	"errors"
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

	"berth/internal/errdefs"
	"berth/internal/fixture"
	"berth/internal/nsinit"
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
}

// The bytes are the assembly of usernsHelperAsm (where binutils is here).
func TestUsernsHelperMatchesSource(t *testing.T) {
	as, err1 := exec.LookPath("as")
	objcopy, err2 := exec.LookPath("objcopy")
	if err1 != nil || err2 != nil || goruntime.GOARCH != "amd64" {
		t.Skip("needs GNU as and objcopy for x86-64 (binutils) to reassemble the helper")
	}
	dir := t.TempDir()
	src, obj, bin := filepath.Join(dir, "h.s"), filepath.Join(dir, "h.o"), filepath.Join(dir, "h.bin")
	if err := os.WriteFile(src, []byte(usernsHelperAsm), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "--64", "-o", obj, src).CombinedOutput(); err != nil {
		t.Fatalf("as: %v: %s", err, out)
	}
	if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v: %s", err, out)
	}
	got, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, usernsHelperCode) {
		t.Errorf("usernsHelperCode differs from the assembled source:\n got %x\nwant %x", usernsHelperCode, got)
	}
}

// runHelper runs the helper from its sealed memfd with fd 3 = ns (or
// /dev/null), fd 5 = a pipe for its failure status. It returns the output,
// the exit status and the status bytes.
func runHelper(t *testing.T, ns *os.File, args ...string) (string, int, []byte) {
	t.Helper()
	helper, err := usernsHelperFile()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	extra := []*os.File{ns, helper, pw}
	if ns == nil {
		null, _ := os.Open(os.DevNull)
		defer null.Close()
		extra[0] = null
	}
	cmd := &exec.Cmd{Path: "/proc/self/fd/4", Args: append([]string{"berth-userns"}, args...), ExtraFiles: extra}
	out, err := cmd.CombinedOutput()
	pw.Close()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	status, _ := io.ReadAll(pr)
	return string(out), code, status
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
	out, code, status := runHelper(t, ns, "3", "5", "/bin/busybox", "sh", "-c", "cat /proc/self/uid_map; id -u; id -g; readlink /proc/self/fd/3 || echo closed")
	f := strings.Fields(out)
	// The helper closed the ns fd (3): readlink finds nothing there.
	if code != 0 || strings.Join(f, " ") != "0 1000 1 0 0 closed" || len(status) != 0 {
		t.Errorf("exit %d, output %q, status %x; want uid_map 0 1000 1, uid 0, gid 0, fd 3 closed, no status", code, out, status)
	}

	// A failed execve, after the namespace was joined, says so.
	_, code, status = runHelper(t, ns, "3", "5", "/no/such/program", "x")
	if code != 127 || !bytes.Equal(status, []byte{0xff, 5, byte(unix.ENOENT), 0}) {
		t.Errorf("execve of a missing program: exit %d, status %x, want 127 and ff 05 %02x 00", code, status, byte(unix.ENOENT))
	}
}

func TestUsernsHelperFailures(t *testing.T) {
	requireHelper(t)
	for _, tc := range []struct {
		args   []string
		status []byte
	}{
		{nil, nil},                // no arguments: no status fd known
		{[]string{"3", "5"}, nil}, // no PATH: SYNCFD is not trusted yet
		// fd 3 (/dev/null) is not a user namespace: step 2, EINVAL.
		{[]string{"3", "5", "/bin/true", "true"}, []byte{0xff, 2, byte(unix.EINVAL), 0}},
		// fd 77 is not open: step 2, EBADF.
		{[]string{"77", "5", "/bin/true", "true"}, []byte{0xff, 2, byte(unix.EBADF), 0}},
	} {
		out, code, status := runHelper(t, nil, tc.args...)
		if code != 127 || !bytes.Equal(status, tc.status) {
			t.Errorf("helper %q: exit %d (%s), status %x; want 127, status %x", tc.args, code, out, status, tc.status)
		}
	}
}

// The parent reads the status as a HelperFailure and names step and errno.
func TestHelperErrorNamesStep(t *testing.T) {
	err := helperError(&nsinit.HelperFailure{Step: 2, Errno: unix.EPERM})
	if !strings.Contains(err.Error(), "setns(CLONE_NEWUSER)") || !strings.Contains(err.Error(), "operation not permitted") ||
		errdefs.ClassOf(err) != errdefs.ClassForbidden {
		t.Errorf("helperError: %v (class %v)", err, errdefs.ClassOf(err))
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[1], []byte{0xff, 3, byte(unix.EINVAL), 0}); err != nil {
		t.Fatal(err)
	}
	var hf *nsinit.HelperFailure
	if _, err := nsinit.ReadFrame(fds[0], &nsinit.Msg{}); !errors.As(err, &hf) || hf.Step != 3 || hf.Errno != unix.EINVAL {
		t.Errorf("ReadFrame of a helper status: %v", err)
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

// An exec child whose helper fails is an error of Exec naming the step,
// not a process that "started" and exits 127 (EOF on the sync socket is
// what a successful exec looks like).
func TestExecHelperFailureIsAnError(t *testing.T) {
	requireRoot(t)
	requireHelper(t)
	r := newRuntime(t)
	notUser, err := os.Open("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	defer notUser.Close()
	p := testSpec(t, "true").Process
	l := &launch{cfg: &nsinit.Config{Mode: nsinit.ModeExec, ID: "x", Process: p, UserNS: true}, userNS: notUser}
	proc, err := r.start(l)
	if err == nil {
		_, _ = proc.Wait()
		t.Fatal("exec through a helper that cannot join the namespace succeeded")
	}
	if !strings.Contains(err.Error(), "setns(CLONE_NEWUSER)") || !strings.Contains(err.Error(), unix.EINVAL.Error()) {
		t.Errorf("error %q does not name the step and errno", err)
	}
}
