package runtimecli

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// `run` of a spec that joins an existing user namespace by path (what
// podman and Kubernetes do for a pod): the container runs as that
// namespace's root, in a PID namespace of its own.
func TestRunJoiningUserNamespace(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skipf("no user namespace helper on %s", goruntime.GOARCH)
	}
	c := newCLI(t, "sh", "-c", "echo pid=$$; id -u; cat /proc/self/uid_map")
	// uid 1000, root of the namespace, must reach the rootfs.
	for _, d := range []string{filepath.Dir(c.bundle), c.bundle} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	holder := exec.Command("/bin/sleep", "100")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1000}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1000}},
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	c.edit(func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{
			Type: specs.UserNamespace, Path: "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/user"})
		s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
	})
	out, stderr, code := c.run("run", "joiner")
	if code != 0 || !strings.HasPrefix(out, "pid=1\n0\n") || !strings.Contains(out, "0       1000       1000") {
		t.Errorf("run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if out, _, _ := c.run("list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("left behind: %q", out)
	}
}
