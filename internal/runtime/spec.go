package runtime

import (
	"errors"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
	"berth/internal/nsinit"
	"berth/internal/seccomp"
)

// Validate checks what can be checked before anything is created, so a bad
// spec leaves nothing behind. Errors are InvalidParameter.
func Validate(s *specs.Spec) error {
	if err := validate(s); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid spec: %w", err))
	}
	return nil
}

func validate(s *specs.Spec) error {
	if s == nil {
		return errors.New("no spec")
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is required")
	}
	if s.Linux == nil {
		return errors.New("linux section is required")
	}
	if err := validateProcess(s.Process); err != nil {
		return err
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	newUser := false
	for _, ns := range s.Linux.Namespaces {
		newUser = newUser || (ns.Type == specs.UserNamespace && ns.Path == "")
		if _, ok := cloneFlags[ns.Type]; !ok {
			return fmt.Errorf("unknown namespace type %q", ns.Type)
		}
		if ns.Type == specs.TimeNamespace {
			return errors.New("time namespaces are not supported")
		}
		if seen[ns.Type] {
			return fmt.Errorf("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("%s namespace path %q is not absolute", ns.Type, ns.Path)
		}
	}
	if (s.Hostname != "" || s.Domainname != "") && !seen[specs.UTSNamespace] {
		return errors.New("hostname and domainname need a new UTS namespace")
	}
	// A joined user namespace has its mappings already; the spec's are moot.
	if newUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return errors.New("a new user namespace needs uidMappings and gidMappings")
	}
	for _, m := range s.Mounts {
		if m.Destination == "" {
			return errors.New("a mount has no destination")
		}
		if _, _, _, err := nsinit.ParseMountOptions(m.Options); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if s.Linux.Seccomp != nil {
		if _, err := seccomp.Compile(s.Linux.Seccomp); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if p == nil {
		return errors.New("process is required")
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args must not be empty")
	}
	if p.Cwd != "" && !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q is not absolute", p.Cwd)
	}
	if err := nsinit.ValidateCaps(p.Capabilities); err != nil {
		return err
	}
	for _, l := range p.Rlimits {
		if _, ok := nsinit.RlimitNumber(l.Type); !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		if l.Soft > l.Hard {
			return fmt.Errorf("rlimit %s: soft %d above hard %d", l.Type, l.Soft, l.Hard)
		}
	}
	return nil
}

// Example returns the spec `runc spec` writes: sh in ./rootfs with a
// terminal, the usual mounts and Docker-like restrictions.
func Example() *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "runc",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
				"/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}
