package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/fixture"
)

// usernsRootfs builds a busybox rootfs that uid 1000 (root of the test
// user namespaces) can reach, and a directory owned by 1000:1000 for the
// container to write to.
func usernsRootfs(t *testing.T) (rootfs, data string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-userns-join-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rootfs = filepath.Join(dir, "rootfs")
	if err := fixture.BusyboxRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	// The mount point: the namespace's root cannot create it in a
	// rootfs owned by host root.
	if err := os.Mkdir(filepath.Join(rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return rootfs, data
}

// usernsOwner starts a container with a user namespace of its own (root is
// host uid 1000) for others to join.
func usernsOwner(t *testing.T, r *Runtime, rootfs string) *container {
	t.Helper()
	owner := testSpec(t, "sleep", "100")
	owner.Root.Path = rootfs
	owner.Linux.Namespaces = append(owner.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	owner.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 2000}}
	owner.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 3000}}
	co := create(t, r, "userns-owner", owner)
	if err := r.Start("userns-owner"); err != nil {
		t.Fatal(err)
	}
	return co
}

func nsLink(t *testing.T, pid int, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A container that joins another container's user namespace by path: its
// own mount, UTS, IPC, net and cgroup namespaces are created inside that
// user namespace (they must be owned by it, or its root could not mount
// proc or sysfs), with a PID namespace of its own (init is pid 1) or the
// other container's, joined by path. state, kill and delete work and
// leave nothing behind.
func TestCreateJoiningUserNamespace(t *testing.T) {
	requireHelper(t)
	r := newRuntime(t)
	rootfs, data := usernsRootfs(t)

	co := usernsOwner(t, r, rootfs)
	ownerUser := nsLink(t, co.pid, "user")

	for _, tc := range []struct {
		name    string
		joinPid bool
	}{{"new-pid-ns", false}, {"joined-pid-ns", true}} {
		t.Run(tc.name, func(t *testing.T) {
			id := "userns-" + tc.name
			s := testSpec(t, "sh", "-c", `echo pid=$$; echo init=$(cat /proc/1/comm); id; cat /proc/self/uid_map /proc/self/gid_map
				readlink /proc/self/ns/user; hostname; touch /data/`+tc.name+`; stat -c 'owner=%u:%g' /data/`+tc.name+`; echo ready; sleep 100`)
			s.Root.Path = rootfs
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
			var nss []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.PIDNamespace && tc.joinPid {
					ns.Path = fmt.Sprintf("/proc/%d/ns/pid", co.pid)
				}
				nss = append(nss, ns)
			}
			s.Linux.Namespaces = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", co.pid)})
			// No mappings: a joined user namespace has its own.
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil

			c := create(t, r, id, s)
			st, err := r.State(id)
			if err != nil || st.Status != specs.StateCreated || st.Pid != c.pid {
				t.Fatalf("state after create: %+v, %v (init %d)", st, err, c.pid)
			}
			if got := nsLink(t, c.pid, "user"); got != ownerUser {
				t.Errorf("init's user namespace %s, want the owner's %s", got, ownerUser)
			}
			if tc.joinPid {
				if got, want := nsLink(t, c.pid, "pid"), nsLink(t, co.pid, "pid"); got != want {
					t.Errorf("init's pid namespace %s, want the owner's %s", got, want)
				}
			}
			for _, ns := range []string{"mnt", "net", "uts", "ipc"} {
				if nsLink(t, c.pid, ns) == nsLink(t, co.pid, ns) || nsLink(t, c.pid, ns) == nsLink(t, os.Getpid(), ns) {
					t.Errorf("%s namespace is not the container's own", ns)
				}
			}
			if err := r.Start(id); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, c, "ready")
			out := c.outString()
			wantPid := "pid=1\n"
			if tc.joinPid {
				wantPid = "init=sleep\n" // the owner's init is pid 1
			}
			for _, want := range []string{wantPid, "uid=0(root) gid=0(root)", "0       1000       2000", "0       1000       3000",
				ownerUser + "\n", "berth-test\n", "owner=0:0\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if tc.joinPid && strings.Contains(out, "pid=1\n") {
				t.Errorf("joined the owner's pid namespace but is pid 1:\n%s", out)
			}
			// exec joins the same user namespace, through the helper.
			if got, code := execOut(t, r, id, "sh", "-c", "id -u; readlink /proc/self/ns/user"); code != 0 || got != "0\n"+ownerUser+"\n" {
				t.Errorf("exec: exit %d, output %q, want 0 and %s", code, got, ownerUser)
			}
			var fst unix.Stat_t
			if err := unix.Stat(filepath.Join(data, tc.name), &fst); err != nil || fst.Uid != 1000 || fst.Gid != 1000 {
				t.Errorf("file made by the container: %v, host owner %d:%d, want 1000:1000", err, fst.Uid, fst.Gid)
			}
			if st, _ := r.State(id); st.Status != specs.StateRunning {
				t.Errorf("status %s after start", st.Status)
			}
			if err := r.Delete(id, false); !errdefs.IsConflict(err) {
				t.Errorf("delete while running: %v, want Conflict", err)
			}
			if err := r.Kill(id, unix.SIGKILL, false); err != nil {
				t.Fatal(err)
			}
			if code := c.wait(); code != 128+int(unix.SIGKILL) {
				t.Errorf("exit %d after SIGKILL", code)
			}
			if err := r.Delete(id, false); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(r.Root(), id)); !os.IsNotExist(err) {
				t.Errorf("state dir left after delete: %v", err)
			}
			assertNoCgroup(t, id)
		})
	}
	if !processAlive(co.pid, 0) {
		t.Error("the owner container died")
	}
}

// A failure of the userns helper names its step and errno instead of
// surfacing as exit status 127; the failed create leaves nothing behind.
func TestCreateJoiningUserNamespaceHelperFailure(t *testing.T) {
	requireHelper(t)
	r := newRuntime(t)
	// A user namespace without mappings: joining works, but uid and gid 0
	// do not exist there.
	holder := exec.Command("/bin/sleep", "100")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })

	for i, tc := range []struct {
		path  string
		want  []string
		class func(error) bool
	}{
		{"/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/user", []string{"setresgid(0, 0, 0)", unix.EINVAL.Error()}, errdefs.IsInvalidParameter},
		// A UTS namespace given as a user namespace: setns refuses it.
		{"/proc/self/ns/uts", []string{"setns(CLONE_NEWUSER)", unix.EINVAL.Error()}, errdefs.IsInvalidParameter},
	} {
		id := "helperfail" + strconv.Itoa(i)
		s := testSpec(t, "true")
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: tc.path})
		_, err := r.Create(id, CreateOpts{Bundle: t.TempDir(), Spec: s})
		if err == nil {
			t.Fatalf("create joining %s succeeded", tc.path)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("joining %s: error %q does not mention %q", tc.path, err, w)
			}
		}
		if !tc.class(err) {
			t.Errorf("error %q has class %v", err, errdefs.ClassOf(err))
		}
		if _, err := os.Stat(filepath.Join(r.Root(), id)); !os.IsNotExist(err) {
			t.Errorf("state dir of %s left behind", id)
		}
		assertNoCgroup(t, id)
	}
}

// The init forked into its PID namespace is a session leader and gets the
// container's terminal.
func TestCreateJoiningUserNamespaceTerminal(t *testing.T) {
	requireHelper(t)
	r := newRuntime(t)
	rootfs, _ := usernsRootfs(t)
	co := usernsOwner(t, r, rootfs)
	s := testSpec(t, "sh", "-c", `test -t 0 && test -t 1 && echo tty=$(tty) pid=$$ uid=$(id -u)`)
	s.Root.Path = rootfs
	s.Process.Terminal = true
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", co.pid)})
	s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
	if out := runOnTerminal(t, r, "userns-tty", s); !strings.Contains(out, "tty=/dev/pts/0 pid=1 uid=0") {
		t.Errorf("output %q, want tty=/dev/pts/0 pid=1 uid=0", out)
	}
}
