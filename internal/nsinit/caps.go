package nsinit

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames lists Linux capabilities by number.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapNumber maps "CAP_SYS_ADMIN" (or "SYS_ADMIN", any case) to its number.
func CapNumber(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// CapNames returns every capability name berth knows.
func CapNames() []string { return append([]string(nil), capNames...) }

// ValidateCaps reports the first unknown capability name in caps.
func ValidateCaps(caps *specs.LinuxCapabilities) error {
	if caps == nil {
		return nil
	}
	for set, list := range map[string][]string{
		"bounding": caps.Bounding, "effective": caps.Effective, "inheritable": caps.Inheritable,
		"permitted": caps.Permitted, "ambient": caps.Ambient,
	} {
		for _, c := range list {
			if _, ok := CapNumber(c); !ok {
				return fmt.Errorf("unknown capability %q in the %s set", c, set)
			}
		}
	}
	return nil
}

var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(capNames) - 1
})

func capMask(list []string) (lo, hi uint32, set map[int]bool) {
	set = map[int]bool{}
	for _, c := range list {
		n, ok := CapNumber(c)
		if !ok || n > lastCap() {
			continue // unknown to this kernel: ignored, as runc does
		}
		set[n] = true
		if n < 32 {
			lo |= 1 << n
		} else {
			hi |= 1 << (n - 32)
		}
	}
	return lo, hi, set
}

// dropBounding trims the bounding set of the calling thread. It needs
// CAP_SETPCAP in the effective set, so it runs before the uid changes.
func dropBounding(caps *specs.LinuxCapabilities) error {
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	_, _, bounding := capMask(caps.Bounding)
	for n := 0; n <= lastCap(); n++ {
		if bounding[n] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop %s from the bounding set: %w", capName(n), err)
		}
	}
	return nil
}

// applyCaps sets the permitted, effective, inheritable and ambient sets on
// the calling thread. A nil caps means no capabilities at all.
func applyCaps(caps *specs.LinuxCapabilities) error {
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	var data [2]unix.CapUserData
	data[0].Effective, data[1].Effective, _ = capMask(caps.Effective)
	data[0].Permitted, data[1].Permitted, _ = capMask(caps.Permitted)
	data[0].Inheritable, data[1].Inheritable, _ = capMask(caps.Inheritable)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w%s", err, missingCaps(caps))
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	_, _, ambient := capMask(caps.Ambient)
	for n := range ambient {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", capName(n), err)
		}
	}
	return nil
}

// missingCaps explains a refused capset: the capabilities asked for that
// this process's bounding set lacks (so nothing can grant them).
func missingCaps(caps *specs.LinuxCapabilities) string {
	var missing []string
	for _, list := range [][]string{caps.Permitted, caps.Effective, caps.Inheritable} {
		_, _, set := capMask(list)
		for n := range set {
			if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0); err == nil && in == 0 &&
				!slices.Contains(missing, capName(n)) {
				missing = append(missing, capName(n))
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	slices.Sort(missing)
	return fmt.Sprintf(" (not in the runtime's bounding set: %s)", strings.Join(missing, ", "))
}

func capName(n int) string {
	if n < len(capNames) {
		return capNames[n]
	}
	return "capability " + strconv.Itoa(n)
}
