package specgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"berth/internal/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64 { return &v }

// DefaultDeviceRules is the device cgroup allow list of an unprivileged
// container: deny everything, then allow mknod of any node and use of the
// standard devices. It spells out what Docker's spec lists plus what runc
// adds implicitly (mknod, /dev/full, ptmx, the pty slaves and /dev/net/tun),
// so any runtime enforces the same set.
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64(major), Minor: i64(minor), Access: access}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		// Docker lists /dev/fuse as denied; after deny-all that is a no-op,
		// and placed after a wildcard rule a v1 devices cgroup cannot punch
		// the hole, so it goes first.
		{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
		rule("c", -1, -1, "m"), // mknod of any char device
		rule("b", -1, -1, "m"), // and any block device
		rule("c", 1, 3, "rwm"), // /dev/null
		rule("c", 1, 5, "rwm"), // /dev/zero
		rule("c", 1, 7, "rwm"), // /dev/full
		rule("c", 1, 8, "rwm"), // /dev/random
		rule("c", 1, 9, "rwm"), // /dev/urandom
		rule("c", 5, 0, "rwm"), // /dev/tty
		rule("c", 5, 1, "rwm"), // /dev/console
		rule("c", 5, 2, "rwm"), // /dev/ptmx
		rule("c", 136, -1, "rwm"),
		rule("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// devices fills spec.Linux.Devices and the device cgroup rules: the
// defaults, --device mappings and --device-cgroup-rule; a privileged
// container gets every host device and an allow-all rule.
func (b *builder) devices() error {
	res := b.spec.Linux.Resources
	if b.hc.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return fmt.Errorf("list host devices for a privileged container: %w", err)
		}
		for _, dm := range b.hc.Devices {
			if dm.PathInContainer == "" || dm.PathInContainer == dm.PathOnHost {
				continue // already there with the host's /dev
			}
			d, _, err := devicesFromPath(dm.PathOnHost, dm.PathInContainer, "rwm")
			if err != nil {
				return err
			}
			devs = append(devs, d...)
		}
		b.spec.Linux.Devices = devs
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	rules := DefaultDeviceRules()
	var devs []specs.LinuxDevice
	for _, dm := range b.hc.Devices {
		perms := dm.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid device cgroup permissions %q for %s", perms, dm.PathOnHost))
		}
		d, r, err := devicesFromPath(dm.PathOnHost, dm.PathInContainer, perms)
		if err != nil {
			return err
		}
		devs = append(devs, d...)
		rules = append(rules, r...)
	}
	for _, raw := range b.hc.DeviceCgroupRules {
		r, err := parseDeviceCgroupRule(raw)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	b.spec.Linux.Devices = devs
	res.Devices = rules
	return nil
}

var deviceRuleRE = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// parseDeviceCgroupRule parses --device-cgroup-rule "c 1:3 rwm" ("a" alone
// means every device).
func parseDeviceCgroupRule(raw string) (specs.LinuxDeviceCgroup, error) {
	rule := raw
	if rule == "a" {
		rule = "a *:* rwm"
	}
	m := deviceRuleRE.FindStringSubmatch(rule)
	if m == nil {
		return specs.LinuxDeviceCgroup{}, errdefs.InvalidParameter(fmt.Errorf("invalid device cgroup rule format: '%s'", raw))
	}
	num := func(s string) (*int64, error) {
		if s == "*" {
			return i64(-1), nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid device number in device cgroup rule '%s'", raw))
		}
		return &n, nil
	}
	major, err := num(m[2])
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	minor, err := num(m[3])
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Major: major, Minor: minor, Access: m[4]}, nil
}

var errNotDevice = errors.New("not a device node")

// deviceFromPath describes the device node at p (following no symlink).
func deviceFromPath(p string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT).Perm()
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     p,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// devicesFromPath maps a --device: a device node, or a directory whose
// device nodes are all mapped under the container path (Docker's rule).
func devicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	if inContainer == "" {
		inContainer = onHost
	}
	resolved := onHost
	if fi, err := os.Lstat(onHost); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if p, err := filepath.EvalSymlinks(onHost); err == nil {
			resolved = p
		}
	}
	rule := func(d specs.LinuxDevice) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms}
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = inContainer
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{rule(d)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if errors.Is(err, errNotDevice) {
		if fi, serr := os.Stat(resolved); serr == nil && fi.IsDir() {
			_ = filepath.WalkDir(resolved, func(p string, _ fs.DirEntry, _ error) error {
				child, cerr := deviceFromPath(p)
				if cerr != nil {
					return nil
				}
				child.Path = inContainer + strings.TrimPrefix(p, resolved)
				devs = append(devs, child)
				rules = append(rules, rule(child))
				return nil
			})
		}
	}
	if len(devs) == 0 {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("error gathering device information while adding custom device %q: %w", onHost, err))
	}
	return devs, rules, nil
}

// hostDevices lists the host's device nodes under /dev for a privileged
// container, skipping the per-container filesystems (pts, shm, mqueue) and
// /dev/console, which the runtime provides.
func hostDevices() ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "/dev" {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return fs.SkipDir
			}
			return nil
		}
		if p == "/dev/console" {
			return nil
		}
		d, err := deviceFromPath(p)
		if err != nil {
			return nil
		}
		devs = append(devs, d)
		return nil
	})
	return devs, err
}
