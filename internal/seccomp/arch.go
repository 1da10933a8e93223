package seccomp

import (
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sysent is one row of a generated syscall table (syscalls_table.go).
type sysent struct {
	name string
	nr   uint32
}

// arch describes one seccomp architecture (an ABI): the value the kernel puts
// in seccomp_data.arch, the width of syscall arguments, and its syscall table.
type arch struct {
	name  specs.Arch
	audit uint32
	// bits64 is false for 32-bit ABIs: only the low halves of arguments are
	// compared there, as libseccomp does.
	bits64 bool
	// x32 marks the x32 ABI: it shares AUDIT_ARCH_X86_64 with x86_64 and is
	// told apart by x32Bit in the syscall number.
	x32   bool
	table []sysent
}

// x32Bit is __X32_SYSCALL_BIT: set in the syscall number of x32 calls.
const x32Bit = 0x40000000

var arches = []*arch{
	{name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, bits64: true, table: syscallsX86_64},
	{name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, table: syscallsX86},
	{name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, x32: true, table: syscallsX32},
	{name: specs.ArchAARCH64, audit: unix.AUDIT_ARCH_AARCH64, bits64: true, table: syscallsAARCH64},
	{name: specs.ArchARM, audit: unix.AUDIT_ARCH_ARM, table: syscallsARM},
	{name: specs.ArchRISCV64, audit: unix.AUDIT_ARCH_RISCV64, bits64: true, table: syscallsRISCV64},
	{name: specs.ArchS390X, audit: unix.AUDIT_ARCH_S390X, bits64: true, table: syscallsS390X},
	{name: specs.ArchPPC64LE, audit: unix.AUDIT_ARCH_PPC64LE, bits64: true, table: syscallsPPC64LE},
	{name: specs.ArchLOONGARCH64, audit: unix.AUDIT_ARCH_LOONGARCH64, bits64: true, table: syscallsLOONGARCH64},
}

// goarchToSeccomp names the native ABI of each GOARCH berth can run on.
var goarchToSeccomp = map[string]specs.Arch{
	"amd64":   specs.ArchX86_64,
	"386":     specs.ArchX86,
	"arm64":   specs.ArchAARCH64,
	"arm":     specs.ArchARM,
	"riscv64": specs.ArchRISCV64,
	"s390x":   specs.ArchS390X,
	"ppc64le": specs.ArchPPC64LE,
	"loong64": specs.ArchLOONGARCH64,
}

// lookupArch accepts both the SCMP_ARCH_ spelling and the bare lower-case
// one ("x86_64") that some profiles use.
func lookupArch(name specs.Arch) *arch {
	n := strings.ToUpper(string(name))
	if !strings.HasPrefix(n, "SCMP_ARCH_") {
		n = "SCMP_ARCH_" + n
	}
	for _, a := range arches {
		if string(a.name) == n {
			return a
		}
	}
	return nil
}

// nativeArch is the ABI of the running binary. libseccomp always filters
// it, whatever the profile lists, and so do we: a profile naming only
// foreign ABIs must not leave the native one unfiltered.
func nativeArch() *arch {
	return lookupArch(goarchToSeccomp[runtime.GOARCH])
}

// syscallNumber resolves a syscall name on a; ok is false for names the
// ABI does not have.
func (a *arch) syscallNumber(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(a.table, name, func(e sysent, n string) int {
		return strings.Compare(e.name, n)
	})
	if !ok {
		return 0, false
	}
	return a.table[i].nr, true
}
