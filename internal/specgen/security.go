package specgen

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"berth/internal/errdefs"

	"github.com/moby/profiles/seccomp"
)

// securityOptions is what HostConfig.SecurityOpt asked for.
type securityOptions struct {
	noNewPrivileges bool
	// seccompProfile is "" (Docker's default profile), "unconfined",
	// "builtin", a JSON profile, or a path to one.
	seccompProfile string
	// unconfinedPaths is systempaths=unconfined: no masked or read-only
	// paths (the docker CLI turns it into empty HostConfig lists itself).
	unconfinedPaths bool
	writableCgroups *bool
}

// ValidateSecurityOpts checks --security-opt values as Build reads them,
// so that the daemon can refuse a bad one at create, as dockerd does, with
// dockerd's messages (`invalid --security-opt 2: "x=y"`).
func ValidateSecurityOpts(opts []string) error {
	_, err := parseSecurityOpts(opts)
	return err
}

// parseSecurityOpts reads --security-opt values the way dockerd does:
// "key=value", the legacy "key:value", or the bare "no-new-privileges".
// AppArmor and SELinux label options are accepted and ignored: berth sets
// up neither.
func parseSecurityOpts(opts []string) (securityOptions, error) {
	var so securityOptions
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			so.noNewPrivileges = true
			continue
		}
		if opt == "disable" { // legacy label:disable shorthand
			continue
		}
		if opt == "writable-cgroups" {
			t := true
			so.writableCgroups = &t
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return so, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 1: %q", opt))
		}
		switch k {
		case "label", "apparmor":
		case "seccomp":
			so.seccompProfile = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			so.noNewPrivileges = b
		case "systempaths":
			if v != "unconfined" {
				return so, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			so.unconfinedPaths = true
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			so.writableCgroups = &b
		default:
			return so, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
		}
	}
	return so, nil
}

// seccomp attaches the seccomp filter. Docker's default profile depends on
// the capabilities (CAP_SYS_ADMIN unlocks mount, and so on), so it runs
// after capabilities. Privileged containers run without a filter.
func (b *builder) seccomp() error {
	p := b.sec.seccompProfile
	switch {
	case p == "unconfined":
		return nil
	case b.hc.Privileged && (p == "" || p == "builtin"):
		// Privileged drops the default profile, not a custom one
		// (moby#47499).
		return nil
	case p == "" || p == "builtin":
		prof, err := seccomp.GetDefaultProfile(b.spec)
		if err != nil {
			return fmt.Errorf("build default seccomp profile: %w", err)
		}
		b.spec.Linux.Seccomp = prof
		return nil
	}
	body := p
	// The docker CLI sends the profile's contents; API users and berth's own
	// CLI may send a path instead.
	if !strings.HasPrefix(strings.TrimSpace(p), "{") {
		data, err := os.ReadFile(p)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("opening seccomp profile (%s) failed: %w", p, err))
		}
		body = string(data)
	}
	prof, err := seccomp.LoadProfile(body, b.spec)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("loading seccomp profile: %w", err))
	}
	b.spec.Linux.Seccomp = prof
	return nil
}

// maskedPaths sets the paths hidden from and made read-only to the
// container: HostConfig's lists when set (even empty), else Docker's
// defaults; none when privileged or with systempaths=unconfined.
func (b *builder) maskedPaths() error {
	if b.hc.Privileged || b.sec.unconfinedPaths {
		return nil
	}
	if b.hc.MaskedPaths != nil {
		b.spec.Linux.MaskedPaths = append([]string{}, b.hc.MaskedPaths...)
	} else {
		b.spec.Linux.MaskedPaths = DefaultMaskedPaths()
	}
	if b.hc.ReadonlyPaths != nil {
		b.spec.Linux.ReadonlyPaths = append([]string{}, b.hc.ReadonlyPaths...)
	} else {
		b.spec.Linux.ReadonlyPaths = DefaultReadonlyPaths()
	}
	return nil
}

// DefaultMaskedPaths is Docker's list of paths masked in an unprivileged
// container, plus each CPU's thermal_throttle directory present on this
// host (GHSA-6fw5-f8r9-fgfm).
func DefaultMaskedPaths() []string {
	paths := []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
	return append(paths, thermalThrottlePaths()...)
}

// DefaultReadonlyPaths is Docker's list of /proc paths made read-only.
func DefaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

var thermalThrottlePaths = sync.OnceValue(func() []string {
	data, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return nil
	}
	var out []string
	for _, cpu := range parseCPUList(strings.TrimSpace(string(data))) {
		p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
})

// parseCPUList parses a kernel CPU list such as "0-3,8"; it returns nil on
// malformed input.
func parseCPUList(s string) []int {
	var out []int
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil
			}
		}
		if b-a > 1<<16 {
			return nil
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out
}
