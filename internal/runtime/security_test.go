package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dockerprofile "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// CVE-2024-21626 class: fds of the runtime must not reach the container.
func TestNoHostFDLeaks(t *testing.T) {
	r := newRuntime(t)
	// An fd without O_CLOEXEC in the caller, the way a careless embedding
	// program might hold one.
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	out := sh(t, r, `ls /proc/self/fd | tr '\n' ' '`)
	// ls itself holds one fd (3) on /proc/self/fd.
	if strings.TrimSpace(out) != "0 1 2 3" {
		t.Errorf("container process has fds %q, want only 0 1 2 (and ls's 3)", out)
	}

	c := create(t, r, "fdexec", testSpec(t, "sleep", "100"))
	if err := r.Start("fdexec"); err != nil {
		t.Fatal(err)
	}
	pr, pw, _ := os.Pipe()
	pid, err := r.Exec("fdexec", ExecOpts{Process: testSpec(t, "sh", "-c", `ls /proc/self/fd | tr '\n' ' '`).Process, IO: IO{Stdout: pw}})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 100)
	n, _ := pr.Read(b)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, 0, nil)
	if got := strings.TrimSpace(string(b[:n])); got != "0 1 2 3" {
		t.Errorf("exec'd process has fds %q", got)
	}
	_ = r.Delete("fdexec", true)
	c.wait()
}

// CVE-2024-21626: a cwd reached through a leaked fd must be refused.
func TestCwdThroughProcSelfFdRefused(t *testing.T) {
	r := newRuntime(t)
	for fd := 3; fd <= 8; fd++ {
		s := testSpec(t, "sh", "-c", `ls ..; cat ../../../../../etc/hostname`)
		s.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(fd)
		id := "cwd" + strconv.Itoa(fd)
		c, err := tryCreate(t, r, id, s, CreateOpts{})
		if err != nil {
			continue // refused: good
		}
		// Created: the cwd must then be inside the container.
		if err := r.Start(id); err != nil {
			t.Fatal(err)
		}
		c.wait()
		host, _ := os.ReadFile("/etc/hostname")
		if len(host) > 0 && strings.Contains(c.out.String(), strings.TrimSpace(string(host))) {
			t.Errorf("cwd %s reached the host: %s", s.Process.Cwd, c.out.String())
		}
		_ = r.Delete(id, true)
	}
}

// CVE-2019-5736 class: the binary a container's init runs from cannot be
// opened for writing, even by host root, while or after it runs.
func TestRuntimeBinaryNotWritable(t *testing.T) {
	r := newRuntime(t)
	exe, err := r.exe.get()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("init runs from a %s", r.exe.how)
	// While any process executes a binary the kernel says ETXTBSY before it
	// looks at the mount; the read-only mount is what stops the write once
	// nothing runs it. Prove the mount on a copy that nothing executes.
	cp := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(cp, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ro, err := readOnlyBind(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(ro.Fd())), os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
		t.Errorf("open through the read-only bind for writing: %v, want EROFS", err)
	}
	assertROMount(t, exe)

	// The attack: hold /proc/<init>/exe, wait for the init to exec the
	// user's program, then reopen it for writing.
	create(t, r, "exe", testSpec(t, "sleep", "100"))
	st, _ := r.State("exe")
	held, err := os.Open("/proc/" + strconv.Itoa(st.Pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := r.Start("exe"); err != nil {
		t.Fatal(err)
	}
	waitExec(t, st.Pid, "sleep")
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(held.Fd())), os.O_WRONLY, 0)
	if err == nil {
		w.Close()
		t.Fatal("the runtime binary could be opened for writing through /proc/<init>/exe")
	}
	// /proc/<init>/exe leads to the read-only mount, not the host's file.
	assertROMount(t, held)
}

func assertROMount(t *testing.T, f *os.File) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("%s is not on a read-only mount (flags %#x)", f.Name(), st.Flags)
	}
}

func waitExec(t *testing.T, pid int, comm string) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(b)) == comm {
			return
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil)
	}
	t.Fatalf("process %d never became %s", pid, comm)
}

// Mount destinations are resolved inside the rootfs: symlinks to / or
// through .. cannot put a mount on the host.
func TestMountsCannotEscapeThroughSymlinks(t *testing.T) {
	r := newRuntime(t)
	rootfs := ownRootfs(t)
	hostDir := t.TempDir()
	if err := os.Symlink("/", filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	// Climbs far above the rootfs, then down into the host's temp dir.
	if err := os.Symlink("../../../../../../../../.."+hostDir, filepath.Join(rootfs, "dotdot")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, hostDir), 0o755); err != nil {
		t.Fatal(err)
	}
	s := testSpec(t, "sh", "-c", `grep -c berth-escape /proc/mounts; ls -d /escape1 `+hostDir+`/escape2`)
	s.Root.Path = rootfs
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/abs/escape1", Type: "tmpfs", Source: "berth-escape"},
		specs.Mount{Destination: "/dotdot/escape2", Type: "tmpfs", Source: "berth-escape"},
	)
	out, code := run(t, r, s)
	if code != 0 || !strings.HasPrefix(out, "2\n") {
		t.Errorf("mounts did not land inside the container (exit %d): %s", code, out)
	}
	for _, p := range []string{"/escape1", filepath.Join(hostDir, "escape2")} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("mount destination %s was created on the host", p)
		}
	}
	for _, p := range []string{"escape1", filepath.Join(hostDir, "escape2")} {
		if _, err := os.Stat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("%s not created inside the rootfs: %v", p, err)
		}
	}
}

// With Docker's default capabilities and seccomp profile, a container cannot
// mount, unshare or see host processes.
func TestDockerDefaultsConfine(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `
		mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo MOUNTED
		unshare -m true 2>/dev/null && echo UNSHARED
		unshare -U true 2>/dev/null && echo USERNS
		ls /proc | grep -c '^[0-9]*$'`)
	prof, err := dockerprofile.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Linux.Seccomp = prof
	out, code := run(t, r, s)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, bad := range []string{"MOUNTED", "UNSHARED", "USERNS"} {
		if strings.Contains(out, bad) {
			t.Errorf("container could do %s:\n%s", bad, out)
		}
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(out)); n > 3 {
		t.Errorf("container sees %d processes", n)
	}
}

// Seccomp, not the capability set, refuses mount: with CAP_SYS_ADMIN granted
// a filter that denies mount and unshare still stops them.
func TestSeccompRefusesMountAndUnshare(t *testing.T) {
	r := newRuntime(t)
	s := testSpec(t, "sh", "-c", `mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo MOUNTED; unshare -m true && echo UNSHARED; echo done`)
	caps := append([]string{"CAP_SYS_ADMIN"}, dockerCaps...)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mount", "unshare"}, Action: specs.ActErrno, ErrnoRet: ptrUint(uint(unix.EPERM)),
		}},
	}
	out, _ := run(t, r, s)
	if strings.Contains(out, "MOUNTED") || strings.Contains(out, "UNSHARED") || !strings.Contains(out, "done") {
		t.Errorf("seccomp did not refuse mount/unshare:\n%s", out)
	}
	// Without the filter the same container can mount: the test is real.
	s.Linux.Seccomp = nil
	if out, _ := run(t, r, s); !strings.Contains(out, "MOUNTED") {
		t.Errorf("control run without seccomp could not mount:\n%s", out)
	}
}

func ptrUint(v uint) *uint { return &v }

// Bad input gives a clear, classified error and leaves nothing behind.
func TestBadInputLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	cases := []struct {
		name  string
		edit  func(s *specs.Spec, bundle string)
		want  string
		class func(error) bool
	}{
		{"missing rootfs", func(s *specs.Spec, _ string) { s.Root.Path = "/no/such/rootfs" }, "/no/such/rootfs", errdefs.IsInvalidParameter},
		{"unknown capability", func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FLY")
		}, "CAP_FLY", errdefs.IsInvalidParameter},
		{"bad seccomp rule", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_EXPLODE"}}}
		}, "seccomp", errdefs.IsInvalidParameter},
		{"refused cgroup limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1000-1001"}}
		}, "cpuset", nil},
		{"empty args", func(s *specs.Spec, _ string) { s.Process.Args = nil }, "args", errdefs.IsInvalidParameter},
		{"missing executable", func(s *specs.Spec, _ string) { s.Process.Args = []string{"/bin/nope"} }, "/bin/nope", nil},
		{"invalid config.json", func(s *specs.Spec, bundle string) {
			_ = os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion": 1`), 0o644)
		}, "config.json", errdefs.IsInvalidParameter},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			s := testSpec(t, "true")
			tc.edit(s, bundle)
			o := CreateOpts{Bundle: bundle, Spec: s}
			if tc.name == "invalid config.json" {
				o.Spec = nil
			}
			id := "bad" + strconv.Itoa(i)
			_, err := r.Create(id, o)
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if tc.class != nil && !tc.class(err) {
				t.Errorf("error %q has class %v", err, errdefs.ClassOf(err))
			}
			if _, err := os.Stat(filepath.Join(r.Root(), id)); !os.IsNotExist(err) {
				t.Errorf("state dir left behind")
			}
			assertNoCgroup(t, id)
		})
	}
	if err := r.Start("nosuch"); !errdefs.IsNotFound(err) {
		t.Errorf("start of an unknown id: %v, want NotFound", err)
	}
	if err := r.Delete("nosuch", false); !errdefs.IsNotFound(err) {
		t.Errorf("delete of an unknown id: %v, want NotFound", err)
	}
	if _, err := r.Create("../evil", CreateOpts{Bundle: t.TempDir(), Spec: testSpec(t, "true")}); !errdefs.IsInvalidParameter(err) {
		t.Errorf("create with id ../evil: %v", err)
	}
}

// The spec written by Example round-trips as JSON (what `spec` writes).
func TestExampleSpecIsValid(t *testing.T) {
	s := Example()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&back); err != nil {
		t.Errorf("Example() does not validate: %v", err)
	}
}

// The two ways to protect the runtime binary (see selfexe.go), measured.
func BenchmarkSelfExeReadOnlyBind(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f, err := readOnlyBind("/proc/self/exe")
		if err != nil {
			b.Skip(err)
		}
		f.Close()
	}
}

func BenchmarkSelfExeSealedMemfd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f, err := sealedMemfd()
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
