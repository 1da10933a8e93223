package specgen

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"berth/internal/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities are the capabilities Docker grants a container that is
// neither privileged nor tuned with --cap-add/--cap-drop.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// knownCapabilities lists every capability name Linux defines, indexed by
// its number (include/uapi/linux/capability.h).
var knownCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capAvailable reports whether capability number n can be granted here:
// the kernel knows it (/proc/sys/kernel/cap_last_cap) and it is in this
// process's bounding set (a daemon running without, say, CAP_SYS_RESOURCE
// cannot hand it on). Docker applies the same filter. A variable so tests
// can pin the answer.
var capAvailable = func(n int) bool {
	last, bounding := hostCaps()
	return n <= last && bounding&(1<<uint(n)) != 0
}

var hostCaps = sync.OnceValues(func() (last int, bounding uint64) {
	last = len(knownCapabilities) - 1
	if data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			last = n
		}
	}
	bounding = ^uint64(0)
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
				if b, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					bounding = b
				}
			}
		}
	}
	return last, bounding
})

// AllCapabilities returns every capability that can be granted here, in
// numeric order: what a privileged container gets.
func AllCapabilities() []string {
	var out []string
	for i, c := range knownCapabilities {
		if capAvailable(i) {
			out = append(out, c)
		}
	}
	return out
}

// normalizeCaps upper-cases the names, adds the CAP_ prefix and checks them
// against the kernel, keeping the magic value "ALL".
func normalizeCaps(caps []string) ([]string, error) {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		i := slices.Index(knownCapabilities, c)
		switch {
		case i < 0:
			return nil, errdefs.InvalidParameter(fmt.Errorf("unknown capability: %q", c))
		case !capAvailable(i):
			return nil, errdefs.InvalidParameter(fmt.Errorf("capability not supported by your kernel or not available in the current environment: %q", c))
		}
		out = append(out, c)
	}
	return out, nil
}

// Capabilities applies --cap-add and --cap-drop to Docker's defaults.
// "ALL" in adds grants every capability except the dropped ones; "ALL" in
// drops starts from nothing but the added ones; privileged grants all.
func Capabilities(adds, drops []string, privileged bool) ([]string, error) {
	if privileged {
		return AllCapabilities(), nil
	}
	capDrop, err := normalizeCaps(drops)
	if err != nil {
		return nil, err
	}
	capAdd, err := normalizeCaps(adds)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(capAdd, "ALL"):
		for _, c := range AllCapabilities() {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case slices.Contains(capDrop, "ALL"):
		caps = []string{}
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range capAdd {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// capabilities sets the process capability sets. Like Docker since the
// inheritable-capabilities fix (CVE-2022-24769), the inheritable and ambient
// sets stay empty.
func (b *builder) capabilities() error {
	caps, err := Capabilities(b.hc.CapAdd, b.hc.CapDrop, b.hc.Privileged)
	if err != nil {
		return err
	}
	b.spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
	}
	return nil
}
