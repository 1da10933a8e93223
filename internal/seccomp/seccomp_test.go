package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// call is a synthetic seccomp_data.
type call struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// data encodes c for x/net/bpf's VM. The VM loads words big-endian while the
// kernel loads them in host order, so each 32-bit word is written big-endian
// at the offset the compiler uses for it: that checks the compiler's layout
// of the low and high halves, not the VM's byte order.
func (c call) data() []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[offNr:], c.nr)
	binary.BigEndian.PutUint32(b[offArch:], c.arch)
	for i, a := range c.args {
		lo, hi := argOffsets(uint(i))
		binary.BigEndian.PutUint32(b[lo:], uint32(a))
		binary.BigEndian.PutUint32(b[hi:], uint32(a>>32))
	}
	return b
}

// vmFor compiles s through the public API and loads the raw result into
// x/net/bpf's VM, which also validates every jump target.
func vmFor(t testing.TB, s *specs.LinuxSeccomp) (*bpf.VM, int) {
	t.Helper()
	filter, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return vmOf(t, filter), len(filter)
}

func vmOf(t testing.TB, filter []unix.SockFilter) *bpf.VM {
	t.Helper()
	if len(filter) > maxInstructions {
		t.Fatalf("program of %d instructions exceeds %d", len(filter), maxInstructions)
	}
	raw := make([]bpf.RawInstruction, len(filter))
	for i, f := range filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("VM rejects program: %v", err)
	}
	return vm
}

func run(t testing.TB, vm *bpf.VM, c call) uint32 {
	t.Helper()
	out, err := vm.Run(c.data())
	if err != nil {
		t.Fatalf("VM run: %v", err)
	}
	return uint32(out)
}

func uptr(u uint) *uint { return &u }

const (
	x86_64 = unix.AUDIT_ARCH_X86_64
	i386   = unix.AUDIT_ARCH_I386
)

func nr(t testing.TB, a specs.Arch, name string) uint32 {
	t.Helper()
	n, ok := lookupArch(a).syscallNumber(name)
	if !ok {
		t.Fatalf("%s has no syscall %q", a, name)
	}
	return n
}

func TestDefaultAction(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    specs.LinuxSeccomp
		want uint32
	}{
		{"allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, unix.SECCOMP_RET_ALLOW},
		{"errno default EPERM", specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"errno ENOSYS", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOSYS))}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"kill", specs.LinuxSeccomp{DefaultAction: specs.ActKill}, unix.SECCOMP_RET_KILL_THREAD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Architectures = []specs.Arch{specs.ArchX86_64}
			vm, _ := vmFor(t, &tc.s)
			for _, n := range []uint32{0, 1, 59, 400, 0x3fffffff} {
				if got := run(t, vm, call{nr: n, arch: x86_64}); got != tc.want {
					t.Errorf("nr %d: got %#x, want %#x", n, got, tc.want)
				}
			}
		})
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{specs.ActErrno, uptr(uint(unix.EACCES)), unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{specs.ActTrace, uptr(7), unix.SECCOMP_RET_TRACE | 7},
		{specs.ActAllow, nil, unix.SECCOMP_RET_ALLOW},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
		{specs.ActNotify, nil, unix.SECCOMP_RET_USER_NOTIF},
	} {
		t.Run(string(tc.act), func(t *testing.T) {
			s := &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(99),
				Architectures: []specs.Arch{specs.ArchX86_64},
				ListenerPath:  "/run/agent.sock",
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: tc.act, ErrnoRet: tc.errno}},
			}
			vm, _ := vmFor(t, s)
			if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64}); got != tc.want {
				t.Errorf("getpid: got %#x, want %#x", got, tc.want)
			}
			if got := run(t, vm, call{nr: unix.SYS_GETPPID, arch: x86_64}); got != unix.SECCOMP_RET_ERRNO|99 {
				t.Errorf("getppid: got %#x, want default", got)
			}
		})
	}
}

// reference is the meaning of each operator on unsigned 64-bit values.
func reference(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

var interesting = []uint64{
	0, 1, 4, 5, 6, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	1 << 32, 1<<32 | 4, 1<<32 | 5, 1<<32 | 6, 2<<32 | 5, 0x5<<32 | 1,
	0xffffffff_00000000, 0xffffffff_fffffffe, 0xffffffff_ffffffff, 0x80000000_00000000,
}

func TestOperators64(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual}
	for _, op := range ops {
		for _, v := range []uint64{5, 1<<32 | 5, 0xffffffff, 0xffffffff_ffffffff, 0} {
			s := &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, Op: op}}}},
			}
			vm, _ := vmFor(t, s)
			for _, arg := range interesting {
				got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{2: arg}}) == unix.SECCOMP_RET_ALLOW
				if want := reference(op, arg, v, 0); got != want {
					t.Errorf("%s value %#x arg %#x: matched=%v, want %v", op, v, arg, got, want)
				}
			}
		}
	}
}

func TestMaskedEqual64(t *testing.T) {
	for _, mv := range [][2]uint64{
		{0x7E020000, 0},                     // Docker's clone namespace flags
		{0xff, 0x12},                        // low byte only
		{0xffffffff_00000000, 0x1_00000000}, // high half only
		{0xf0000000_0000000f, 0x10000000_00000001},
		{0, 0},        // always true
		{0xff, 0x100}, // impossible: datum outside mask
	} {
		s := &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 5, Value: mv[0], ValueTwo: mv[1], Op: specs.OpMaskedEqual}}}},
		}
		vm, _ := vmFor(t, s)
		args := append([]uint64{0x12, 0x112, 0x1_00000000, 0x10000000_00000001, 0x10000000_00000002, 0x7E020000, 0x10000000}, interesting...)
		for _, arg := range args {
			got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{5: arg}}) == unix.SECCOMP_RET_ALLOW
			if want := reference(specs.OpMaskedEqual, arg, mv[0], mv[1]); got != want {
				t.Errorf("mask %#x datum %#x arg %#x: matched=%v, want %v", mv[0], mv[1], arg, got, want)
			}
		}
	}
}

// On a 32-bit ABI only the low halves exist, as in libseccomp.
func TestOperators32BitABI(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}}},
	}
	vm, _ := vmFor(t, s)
	n := nr(t, specs.ArchX86, "personality")
	if got := run(t, vm, call{nr: n, arch: i386, args: [6]uint64{0xffffffff}}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("i386 personality(0xffffffff): got %#x", got)
	}
	if got := run(t, vm, call{nr: n, arch: i386, args: [6]uint64{8}}); got == unix.SECCOMP_RET_ALLOW {
		t.Errorf("i386 personality(8) allowed")
	}
}

func TestArgsAndRulesOr(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			// (a0 == 1 && a1 > 10) || a0 == 7
			{Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 10, Op: specs.OpGreaterThan}}},
			{Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 7, Op: specs.OpEqualTo}}},
			// Second action for another value: first match wins.
			{Names: []string{"getpid"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 9, Op: specs.OpEqualTo}}},
		},
	}
	vm, _ := vmFor(t, s)
	for _, tc := range []struct {
		a0, a1 uint64
		want   uint32
	}{
		{1, 11, unix.SECCOMP_RET_ALLOW},
		{1, 10, unix.SECCOMP_RET_ERRNO | 1},
		{2, 11, unix.SECCOMP_RET_ERRNO | 1},
		{7, 0, unix.SECCOMP_RET_ALLOW},
		{9, 0, unix.SECCOMP_RET_TRAP},
	} {
		if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{tc.a0, tc.a1}}); got != tc.want {
			t.Errorf("getpid(%d, %d): got %#x, want %#x", tc.a0, tc.a1, got, tc.want)
		}
	}
}

// Conditional rules are tried before the syscall's unconditional rule.
func TestUnconditionalFallback(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}}},
		},
	}
	vm, _ := vmFor(t, s)
	if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{3}}); got != unix.SECCOMP_RET_ERRNO|1 {
		t.Errorf("getpid(3): got %#x", got)
	}
	if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{4}}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid(4): got %#x", got)
	}
}

func TestArchitectures(t *testing.T) {
	mk := func(arches ...specs.Arch) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: arches,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno}},
		}
	}
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	x32Mkdirat := nr(t, specs.ArchX32, "mkdirat")
	if x32Mkdirat != x32Bit|unix.SYS_MKDIRAT {
		t.Fatalf("x32 mkdirat = %#x", x32Mkdirat)
	}

	vm, _ := vmFor(t, mk(specs.ArchX86_64, specs.ArchX86, specs.ArchX32))
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"x86_64 mkdirat", call{nr: unix.SYS_MKDIRAT, arch: x86_64}, eperm},
		{"x86_64 getpid", call{nr: unix.SYS_GETPID, arch: x86_64}, unix.SECCOMP_RET_ALLOW},
		{"i386 mkdirat", call{nr: nr(t, specs.ArchX86, "mkdirat"), arch: i386}, eperm},
		{"i386 number of x86_64 mkdirat", call{nr: unix.SYS_MKDIRAT, arch: i386}, unix.SECCOMP_RET_ALLOW},
		{"x32 mkdirat", call{nr: x32Mkdirat, arch: x86_64}, eperm},
		{"x32 getpid", call{nr: x32Bit | unix.SYS_GETPID, arch: x86_64}, unix.SECCOMP_RET_ALLOW},
		{"aarch64 unlisted", call{nr: 34, arch: unix.AUDIT_ARCH_AARCH64}, badArchAction},
		{"garbage arch", call{nr: 1, arch: 0xdeadbeef}, badArchAction},
	} {
		if got := run(t, vm, tc.c); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}

	// Without x32 listed, x32 calls are a bad ABI and kill.
	vm, _ = vmFor(t, mk(specs.ArchX86_64))
	if got := run(t, vm, call{nr: x32Mkdirat, arch: x86_64}); got != badArchAction {
		t.Errorf("x32 call without x32 listed: got %#x", got)
	}
	if got := run(t, vm, call{nr: nr(t, specs.ArchX86, "read"), arch: i386}); got != badArchAction {
		t.Errorf("i386 call without x86 listed: got %#x", got)
	}

	// An aarch64 profile (arm64 number space) on its own audit arch.
	vm, _ = vmFor(t, mk(specs.ArchAARCH64, specs.ArchARM))
	if got := run(t, vm, call{nr: nr(t, specs.ArchAARCH64, "mkdirat"), arch: unix.AUDIT_ARCH_AARCH64}); got != eperm {
		t.Errorf("aarch64 mkdirat: got %#x", got)
	}
	if got := run(t, vm, call{nr: nr(t, specs.ArchARM, "mkdirat"), arch: unix.AUDIT_ARCH_ARM}); got != eperm {
		t.Errorf("arm mkdirat: got %#x", got)
	}
	// The native ABI is always filtered, even when not listed.
	if got := run(t, vm, call{nr: unix.SYS_MKDIRAT, arch: x86_64}); got != eperm {
		t.Errorf("native x86_64 mkdirat with only aarch64 listed: got %#x", got)
	}
}

func TestUnknownSyscallSkipped(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		// socketcall exists on i386 only; no_such_call nowhere.
		Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_call", "socketcall", "getpid"}, Action: specs.ActAllow}},
	}
	vm, _ := vmFor(t, s)
	if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid: got %#x", got)
	}
	if got := run(t, vm, call{nr: nr(t, specs.ArchX86, "socketcall"), arch: i386}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("i386 socketcall: got %#x", got)
	}
}

func TestInvalidProfiles(t *testing.T) {
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow}}}
	}
	for _, tc := range []struct {
		name string
		edit func(s *specs.LinuxSeccomp)
	}{
		{"unknown default action", func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_MAYBE" }},
		{"empty default action", func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }},
		{"unknown action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_MAYBE" }},
		{"unknown operator", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_SOMETIMES"}}
		}},
		{"arg index", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}},
		{"unknown arch", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{"SCMP_ARCH_PDP11"} }},
		{"unsupported arch", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.ArchMIPS} }},
		{"notify without listener", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }},
		{"notify as default", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify; s.ListenerPath = "/x" }},
		{"unknown flag", func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"} }},
		{"errnoRet too big", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Action = specs.ActErrno
			s.Syscalls[0].ErrnoRet = uptr(1 << 16)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.edit(s)
			_, err := Compile(s)
			if !errdefs.IsInvalidParameter(err) {
				t.Fatalf("Compile: got %v, want an InvalidParameter error", err)
			}
			if err := Load(s); !errdefs.IsInvalidParameter(err) {
				t.Fatalf("Load: got %v, want an InvalidParameter error", err)
			}
			t.Log(err)
		})
	}
	if f, err := Compile(nil); f != nil || err != nil {
		t.Errorf("Compile(nil) = %v, %v", f, err)
	}
}

// Many conditional rules push the handlers far beyond a uint8 jump from the
// search tree: the relaxed jumps must still land right.
func TestLongJumps(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64}}
	for i := uint64(0); i < 300; i++ {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names: []string{"getpid"}, Action: specs.ActTrace, ErrnoRet: uptr(uint(i)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: i << 33, Op: specs.OpEqualTo}}})
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"read", "write", "close"}, Action: specs.ActAllow})
	vm, n := vmFor(t, s)
	t.Logf("%d instructions", n)
	for _, i := range []uint64{0, 1, 150, 299} {
		if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{i << 33}}); got != unix.SECCOMP_RET_TRACE|uint32(i) {
			t.Errorf("getpid(%#x): got %#x", i<<33, got)
		}
	}
	if got := run(t, vm, call{nr: unix.SYS_GETPID, arch: x86_64, args: [6]uint64{1}}); got != unix.SECCOMP_RET_ERRNO|1 {
		t.Errorf("getpid(1): got %#x", got)
	}
	for _, n := range []uint32{unix.SYS_READ, unix.SYS_WRITE, unix.SYS_CLOSE} {
		if got := run(t, vm, call{nr: n, arch: x86_64}); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("nr %d: got %#x", n, got)
		}
	}
	if got := run(t, vm, call{nr: 1, arch: 0}); got != badArchAction {
		t.Errorf("bad arch: got %#x", got)
	}
}

func TestTooLong(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64}}
	for i := uint64(0); i < 1000; i++ {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: i << 33, Op: specs.OpEqualTo}}})
	}
	if _, err := Compile(s); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("got %v, want InvalidParameter for a program over 4096 instructions", err)
	}
}
