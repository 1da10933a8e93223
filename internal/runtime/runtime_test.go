package runtime

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

func TestPid1AndHostname(t *testing.T) {
	r := newRuntime(t)
	out := sh(t, r, `echo pid=$$; hostname; cat /proc/1/cmdline | tr '\0' ' '`)
	for _, want := range []string{"pid=1\n", "berth-test\n", "sh -c"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNoHostProcessesOrMounts(t *testing.T) {
	r := newRuntime(t)
	out := sh(t, r, `ls /proc | grep -c '^[0-9]*$'; cut -d' ' -f5 /proc/self/mountinfo`)
	lines := strings.SplitN(out, "\n", 2)
	// sh, ls and grep at most (ls may be gone already).
	if n, _ := strconv.Atoi(lines[0]); n < 1 || n > 3 {
		t.Errorf("container sees %d processes, want 1-3:\n%s", n, out)
	}
	for _, host := range []string{busybox(t), "/work", "/tmp ", "/run/berth"} {
		if strings.Contains(lines[1], host) {
			t.Errorf("container has a mount point at host path %q:\n%s", host, lines[1])
		}
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	r := newRuntime(t)
	out := sh(t, r, `
		echo keys=$(wc -c < /proc/keys) timer_list=$(wc -c < /proc/timer_list)
		grep -q ' /proc/keys ' /proc/mounts && echo keys=masked
		ls /proc/acpi | wc -l | sed 's/^/acpi=/'
		echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys=writable || echo sys=ro
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo uts=writable || echo uts=ro
		touch /sys/x 2>/dev/null && echo sysfs=writable || echo sysfs=ro`)
	for _, want := range []string{"keys=0 timer_list=0", "keys=masked", "acpi=0", "sys=ro", "uts=ro", "sysfs=ro"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}

func TestDefaultCapsHaveNoSysAdmin(t *testing.T) {
	r := newRuntime(t)
	out := sh(t, r, `grep CapEff /proc/self/status; mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>&1 && echo mounted; true`)
	// Docker's default set: 0x a80425fb.
	if !strings.Contains(out, "CapEff:\t00000000a80425fb") {
		t.Errorf("effective caps are not Docker's default set:\n%s", out)
	}
	if strings.Contains(out, "mounted") {
		t.Errorf("mount succeeded without CAP_SYS_ADMIN:\n%s", out)
	}
}

func TestUserAndGroups(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `id; grep -E 'CapEff|Groups' /proc/self/status; echo cwd=$(pwd)`)
	s.Process.User = specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{100}}
	s.Process.Cwd = "/var/www"
	out, code := run(t, r, s)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"uid=33(www-data) gid=33(www-data) groups=100(users)", "CapEff:\t0000000000000000", "cwd=/var/www"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	r := newRuntime(t)
	if _, code := run(t, r, testSpec(t, "sh", "-c", "exit 3")); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}

	// A handler in the container sees SIGTERM; plain pid 1 ignores it, so
	// SIGKILL is what stops that one.
	c := create(t, r, "trap", testSpec(t, "sh", "-c", `trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done`))
	if err := r.Start("trap"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, c, "ready")
	if err := r.Kill("trap", unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(); code != 7 {
		t.Errorf("after SIGTERM: exit %d, want 7", code)
	}

	c = create(t, r, "sleeper", testSpec(t, "sleep", "100"))
	if err := r.Start("sleeper"); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill("sleeper", unix.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(); code != 137 {
		t.Errorf("after SIGKILL: exit %d, want 137", code)
	}
	if st, _ := r.State("sleeper"); st.Status != specs.StateStopped {
		t.Errorf("status %s after exit, want stopped", st.Status)
	}
	if err := r.Kill("sleeper", unix.SIGKILL, false); !errdefs.IsConflict(err) {
		t.Errorf("kill of a stopped container: %v, want Conflict", err)
	}
}

func waitOutput(t *testing.T, c *container, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.outString(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output: %s", want, c.outString())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *container) outString() string { return c.out.String() }

func TestLifecycleAndState(t *testing.T) {
	r := newRuntime(t)
	bundle := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := tryCreate(t, r, "life", testSpec(t, "sleep", "100"), CreateOpts{Bundle: bundle, PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.State("life")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != specs.StateCreated || st.Pid != c.pid || st.Bundle != bundle || st.ID != "life" {
		t.Errorf("state after create: %+v", st)
	}
	if b, _ := os.ReadFile(pidFile); string(b) != strconv.Itoa(c.pid) {
		t.Errorf("pid file has %q, want %d", b, c.pid)
	}
	if _, err := r.Create("life", CreateOpts{Bundle: bundle, Spec: testSpec(t, "true")}); !errdefs.IsConflict(err) {
		t.Errorf("second create with the same id: %v, want Conflict", err)
	}
	if err := r.Start("life"); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State("life"); st.Status != specs.StateRunning {
		t.Errorf("status %s after start", st.Status)
	}
	if err := r.Start("life"); !errdefs.IsConflict(err) {
		t.Errorf("second start: %v, want Conflict", err)
	}
	list, err := r.List()
	if err != nil || len(list) != 1 || list[0].ID != "life" {
		t.Errorf("list: %+v, %v", list, err)
	}

	if err := r.Pause("life"); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State("life"); st.Status != "paused" {
		t.Errorf("status %s after pause", st.Status)
	}
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/stat"); !bytes.Contains(b, []byte(") S")) && !bytes.Contains(b, []byte(") D")) {
		t.Logf("paused init state: %s", b)
	}
	if err := r.Resume("life"); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State("life"); st.Status != specs.StateRunning {
		t.Errorf("status %s after resume", st.Status)
	}
	pids, err := r.Processes("life")
	if err != nil || len(pids) != 1 || pids[0] != c.pid {
		t.Errorf("processes: %v, %v (init %d)", pids, err, c.pid)
	}
	if _, err := r.Stats("life"); err != nil {
		t.Errorf("stats: %v", err)
	}

	if err := r.Delete("life", false); !errdefs.IsConflict(err) {
		t.Errorf("delete of a running container without force: %v, want Conflict", err)
	}
	if err := r.Delete("life", true); err != nil {
		t.Fatal(err)
	}
	c.wait()
	if _, err := r.State("life"); !errdefs.IsNotFound(err) {
		t.Errorf("state after delete: %v, want NotFound", err)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "life")); !os.IsNotExist(err) {
		t.Errorf("state dir left after delete: %v", err)
	}
	assertNoCgroup(t, "life")
}

// assertNoCgroup checks Delete removed the default cgroup of id.
func assertNoCgroup(t *testing.T, id string) {
	t.Helper()
	for _, sub := range []string{"memory", "pids", "cpu", "freezer", "unified"} {
		p := filepath.Join("/sys/fs/cgroup", sub, "berth", id)
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s left behind", p)
		}
	}
}

func TestExecIntoRunningContainer(t *testing.T) {
	r := newRuntime(t)
	c := create(t, r, "execd", testSpec(t, "sleep", "100"))
	if err := r.Start("execd"); err != nil {
		t.Fatal(err)
	}
	pr, pw, _ := os.Pipe()
	p := testSpec(t, "sh", "-c", `echo pid=$$ host=$(hostname) init=$(cat /proc/1/comm); ls /proc | grep -c '^[0-9]*$'`).Process
	pid, err := r.Exec("execd", ExecOpts{Process: p, IO: IO{Stdout: pw, Stderr: pw}})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(pr)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("exec exited %v (%v): %s", ws, err, out)
	}
	s := string(out)
	if !strings.Contains(s, "host=berth-test init=sleep") || strings.Contains(s, "pid=1 ") {
		t.Errorf("exec did not run inside the container: %s", s)
	}
	if pids, _ := r.Processes("execd"); len(pids) != 1 {
		t.Errorf("after exec ended the cgroup has %v", pids)
	}
	// Exec of a missing binary fails in Exec, not silently.
	p.Args = []string{"/no/such/binary"}
	if _, err := r.Exec("execd", ExecOpts{Process: p}); err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("exec of a missing binary: %v", err)
	}
	if err := r.Delete("execd", true); err != nil {
		t.Fatal(err)
	}
	c.wait()
}

func TestTerminal(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `test -t 0 && test -t 1 && echo tty=$(tty)`)
	s.Process.Terminal = true
	if out := runOnTerminal(t, r, "tty", s); !strings.Contains(out, "tty=/dev/pts/0") {
		t.Errorf("no terminal in the container: %q", out)
	}
}

// runOnTerminal creates and starts a container whose spec asks for a
// terminal, waits for it to exit 0 and returns what it wrote on the pty.
func runOnTerminal(t *testing.T, r *Runtime, id string, s *specs.Spec) string {
	t.Helper()
	masters := make(chan *os.File, 1)
	c, err := tryCreate(t, r, id, s, CreateOpts{IO: IO{OnConsole: func(m *os.File) error { masters <- m; return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	m := <-masters
	defer m.Close()
	if err := r.Start(id); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, m); close(done) }()
	if code := c.wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return out.String()
}

func TestMemoryLimitOOMKills(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `dd if=/dev/zero of=/dev/null bs=200M count=1; echo survived`)
	limit := int64(64 << 20)
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	out, code := run(t, r, s)
	if strings.Contains(out, "survived") && !strings.Contains(out, "Killed") {
		t.Errorf("a 200 MiB allocation survived a 64 MiB limit (exit %d): %s", code, out)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `(for i in $(seq 40); do sleep 3 & echo started; done) 2>/dev/null | wc -l`)
	limit := int64(10)
	s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
	out, code := run(t, r, s)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n >= 10 || n < 1 {
		t.Errorf("pids.max 10: %q processes started of 40 (exit %d), want 1-9", out, code)
	}
}

func TestHooks(t *testing.T) {
	r := newRuntime(t)
	dir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	s := testSpec(t, "true")
	s.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart:     []specs.Hook{hook("poststart")},
		Poststop:      []specs.Hook{hook("poststop")},
	}
	if out, code := run(t, r, s); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, h := range []string{"createRuntime", "poststart", "poststop"} {
		b, err := os.ReadFile(filepath.Join(dir, h))
		if err != nil || !bytes.Contains(b, []byte(`"id":"TestHooks-`)) {
			t.Errorf("%s hook got %q (%v), want the state JSON", h, b, err)
		}
	}
	// A failing createRuntime hook fails Create and leaves nothing.
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	if _, err := tryCreate(t, r, "badhook", s, CreateOpts{}); err == nil {
		t.Fatal("create with a failing hook succeeded")
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "badhook")); !os.IsNotExist(err) {
		t.Errorf("state left after a failed create")
	}
}

func TestUserNamespace(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `id -u; cat /proc/self/uid_map`)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	out, code := run(t, r, s)
	if code != 0 || !strings.Contains(out, "0\n") || !strings.Contains(out, "65536") {
		t.Errorf("user namespace: exit %d: %s", code, out)
	}
}
