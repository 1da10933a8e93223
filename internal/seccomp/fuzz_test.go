package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// FuzzCompile feeds arbitrary profiles to Compile: it must never panic, must
// classify every rejection as InvalidParameter, and every program it returns
// must be valid BPF within the kernel's limit that always returns.
func FuzzCompile(f *testing.F) {
	seeds := []string{
		`{"defaultAction":"SCMP_ACT_ALLOW"}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
		  "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
		  {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_TRACE","errnoRet":3,
		  "args":[{"index":5,"value":18446744073709551615,"op":"SCMP_CMP_LE"},{"index":1,"value":4294967296,"op":"SCMP_CMP_NE"}]}]}`,
		`{"defaultAction":"SCMP_ACT_LOG","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],"flags":["SECCOMP_FILTER_FLAG_LOG"],
		  "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}],"listenerPath":"/x"}`,
		`{"defaultAction":"SCMP_ACT_BOGUS"}`,
	}
	if b, err := json.Marshal(dockerProfile(f)); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint32(unix.SYS_READ), uint32(unix.AUDIT_ARCH_X86_64), uint64(0))
	}
	f.Fuzz(func(t *testing.T, profile []byte, nr, arch uint32, arg uint64) {
		var s specs.LinuxSeccomp
		if err := json.Unmarshal(profile, &s); err != nil {
			return
		}
		filter, err := Compile(&s)
		if err != nil {
			if !errdefs.IsInvalidParameter(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		vm := vmOf(t, filter)
		c := call{nr: nr, arch: arch}
		for i := range c.args {
			c.args[i] = arg * uint64(i+1)
		}
		if _, err := vm.Run(c.data()); err != nil {
			t.Fatalf("run: %v", err)
		}
	})
}
