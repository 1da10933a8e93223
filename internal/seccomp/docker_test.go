package seccomp

import (
	"fmt"
	"testing"

	dockerprofile "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func dockerProfile(t testing.TB, caps ...string) *specs.LinuxSeccomp {
	t.Helper()
	p, err := dockerProfileFor(append(append([]string{}, dockerCaps...), caps...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dockerProfileFor(caps []string) (*specs.LinuxSeccomp, error) {
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := dockerprofile.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("GetDefaultProfile: %w", err)
	}
	return p, nil
}

func TestDockerDefaultProfile(t *testing.T) {
	p := dockerProfile(t)
	vm, n := vmFor(t, p)
	t.Logf("Docker's default profile: %d syscall entries, %v, compiled to %d BPF instructions (limit %d)",
		len(p.Syscalls), p.Architectures, n, maxInstructions)

	const (
		newUser  = unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)
		thread   = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM
		allow    = unix.SECCOMP_RET_ALLOW
		eperm    = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosys   = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		afInet   = unix.AF_INET
		afVsock  = unix.AF_VSOCK
		afNetlnk = unix.AF_NETLINK
	)
	x86 := func(name string) uint32 { return nr(t, specs.ArchX86, name) }
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"read", call{nr: unix.SYS_READ, arch: x86_64}, allow},
		{"execve", call{nr: unix.SYS_EXECVE, arch: x86_64}, allow},
		{"mkdirat", call{nr: unix.SYS_MKDIRAT, arch: x86_64}, allow},
		{"mount without CAP_SYS_ADMIN", call{nr: unix.SYS_MOUNT, arch: x86_64}, eperm},
		{"unshare without CAP_SYS_ADMIN", call{nr: unix.SYS_UNSHARE, arch: x86_64}, eperm},
		{"kexec_load", call{nr: unix.SYS_KEXEC_LOAD, arch: x86_64}, eperm},
		{"clone thread", call{nr: unix.SYS_CLONE, arch: x86_64, args: [6]uint64{thread}}, allow},
		{"clone CLONE_NEWUSER", call{nr: unix.SYS_CLONE, arch: x86_64, args: [6]uint64{newUser}}, eperm},
		{"clone CLONE_NEWNET", call{nr: unix.SYS_CLONE, arch: x86_64, args: [6]uint64{unix.CLONE_NEWNET}}, eperm},
		{"clone3 gets ENOSYS", call{nr: unix.SYS_CLONE3, arch: x86_64}, enosys},
		{"personality(0)", call{nr: unix.SYS_PERSONALITY, arch: x86_64, args: [6]uint64{0}}, allow},
		{"personality(query)", call{nr: unix.SYS_PERSONALITY, arch: x86_64, args: [6]uint64{0xffffffff}}, allow},
		{"personality(READ_IMPLIES_EXEC)", call{nr: unix.SYS_PERSONALITY, arch: x86_64, args: [6]uint64{0x0400000}}, eperm},
		{"socket AF_INET", call{nr: unix.SYS_SOCKET, arch: x86_64, args: [6]uint64{afInet}}, allow},
		{"socket AF_NETLINK", call{nr: unix.SYS_SOCKET, arch: x86_64, args: [6]uint64{afNetlnk}}, allow},
		{"socket AF_VSOCK", call{nr: unix.SYS_SOCKET, arch: x86_64, args: [6]uint64{afVsock}}, eperm},
		{"socket AF_INET with high bits", call{nr: unix.SYS_SOCKET, arch: x86_64, args: [6]uint64{1<<32 | afInet}}, eperm},
		{"i386 read", call{nr: x86("read"), arch: i386}, allow},
		{"i386 mount", call{nr: x86("mount"), arch: i386}, eperm},
		{"i386 socketcall", call{nr: x86("socketcall"), arch: i386}, allow},
		{"x32 read", call{nr: x32Bit | unix.SYS_READ, arch: x86_64}, allow},
		{"x32 mount", call{nr: x32Bit | unix.SYS_MOUNT, arch: x86_64}, eperm},
		{"aarch64 ABI", call{nr: 63, arch: unix.AUDIT_ARCH_AARCH64}, badArchAction},
		{"unassigned number", call{nr: 999, arch: x86_64}, eperm},
	} {
		if got := run(t, vm, tc.c); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}

	// With CAP_SYS_ADMIN the namespace and mount calls open up.
	vm, n = vmFor(t, dockerProfile(t, "CAP_SYS_ADMIN"))
	t.Logf("with CAP_SYS_ADMIN: %d BPF instructions", n)
	for _, c := range []call{
		{nr: unix.SYS_MOUNT, arch: x86_64},
		{nr: unix.SYS_CLONE, arch: x86_64, args: [6]uint64{newUser}},
		{nr: unix.SYS_CLONE3, arch: x86_64},
	} {
		if got := run(t, vm, c); got != allow {
			t.Errorf("CAP_SYS_ADMIN nr %d: got %#x, want allow", c.nr, got)
		}
	}
}

func BenchmarkCompileDockerDefault(b *testing.B) {
	p := dockerProfile(b)
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}
