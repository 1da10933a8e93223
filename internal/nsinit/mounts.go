package nsinit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountFlags are the options that are flags, not data, as runc reads them.
var mountFlags = map[string]struct {
	clear bool
	flag  int
}{
	"acl": {false, unix.MS_POSIXACL}, "async": {true, unix.MS_SYNCHRONOUS},
	"atime": {true, unix.MS_NOATIME}, "bind": {false, unix.MS_BIND},
	"defaults": {false, 0}, "dev": {true, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "dirsync": {false, unix.MS_DIRSYNC},
	"exec": {true, unix.MS_NOEXEC}, "iversion": {false, unix.MS_I_VERSION},
	"lazytime": {false, unix.MS_LAZYTIME}, "loud": {true, unix.MS_SILENT},
	"mand": {false, unix.MS_MANDLOCK}, "noacl": {true, unix.MS_POSIXACL},
	"noatime": {false, unix.MS_NOATIME}, "nodev": {false, unix.MS_NODEV},
	"nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"noiversion": {true, unix.MS_I_VERSION}, "nolazytime": {true, unix.MS_LAZYTIME},
	"nomand": {true, unix.MS_MANDLOCK}, "norelatime": {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "nosuid": {false, unix.MS_NOSUID},
	"rbind": {false, unix.MS_BIND | unix.MS_REC}, "relatime": {false, unix.MS_RELATIME},
	"remount": {false, unix.MS_REMOUNT}, "ro": {false, unix.MS_RDONLY},
	"rw": {true, unix.MS_RDONLY}, "silent": {false, unix.MS_SILENT},
	"strictatime": {false, unix.MS_STRICTATIME}, "suid": {true, unix.MS_NOSUID},
	"sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]int{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// ParseMountOptions splits OCI mount options into mount(2) flags,
// propagation flags and the data string.
func ParseMountOptions(opts []string) (flags int, prop []int, data string, err error) {
	var extra []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			prop = append(prop, p)
			continue
		}
		switch o {
		case "rro":
			// Recursive read-only (mountInto applies it to submounts with
			// mount_setattr): the mount itself is read-only too.
			flags |= unix.MS_RDONLY
			continue
		case "tmpcopyup", "nosymfollow", "symfollow", "rrw":
			continue // runc extensions; not needed by berth's callers
		case "idmap", "ridmap":
			return 0, nil, "", fmt.Errorf("mount option %q is not supported", o)
		}
		extra = append(extra, o)
	}
	return flags, prop, strings.Join(extra, ","), nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// mountInto performs one spec mount under the rootfs.
func mountInto(c *Config, m specs.Mount) error {
	flags, prop, data, err := ParseMountOptions(m.Options)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	dest := m.Destination
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	bind := isBind(m)
	src := m.Source
	if bind && !filepath.IsAbs(src) {
		src = filepath.Join(c.Bundle, src)
	}

	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return mountCgroup(c, dest, flags)
	}

	isFile := false
	if bind {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, dest, err)
		}
		isFile = !fi.IsDir()
	}
	target, err := openInRoot(c.Rootfs, dest, isFile)
	if err != nil {
		return fmt.Errorf("mount %s: create destination in rootfs: %w", dest, err)
	}
	defer target.Close()
	// The kernel resolves /proc/self/fd/N to exactly the directory we
	// opened inside the root: no symlink swapped in later can redirect it.
	tpath := fdPath(target)
	full := target.Name()
	if full == "" || !strings.HasPrefix(full, c.Rootfs) {
		full = filepath.Join(c.Rootfs, dest)
	}

	if bind {
		if err := unix.Mount(src, tpath, "", uintptr(flags&(unix.MS_BIND|unix.MS_REC)), ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, dest, err)
		}
		// Bind mounts take their flags only on a remount.
		if rem := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rem != 0 {
			if err := remountBind(tpath, full, rem); err != nil {
				return fmt.Errorf("remount %s with %v: %w", dest, m.Options, err)
			}
		}
	} else {
		err := unix.Mount(m.Source, tpath, m.Type, uintptr(flags), data)
		if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
			// A user namespace without its own network namespace may not
			// mount sysfs: bind the host's instead, as runc does.
			if err = unix.Mount("/sys", tpath, "", unix.MS_BIND|unix.MS_REC, ""); err == nil && flags&unix.MS_RDONLY != 0 {
				err = remountBind(tpath, full, flags&^unix.MS_REC)
			}
		}
		if err != nil && m.Type == "mqueue" && errors.Is(err, unix.EPERM) {
			err = unix.Mount("/dev/mqueue", tpath, "", unix.MS_BIND|unix.MS_REC, "")
		}
		if err != nil {
			return fmt.Errorf("mount %s (%s) on %s with %v: %w", m.Source, m.Type, dest, m.Options, err)
		}
	}
	if slices.Contains(m.Options, "rro") {
		if err := recursiveReadOnly(full); err != nil {
			return fmt.Errorf("mount %s: %w", dest, err)
		}
	}
	for _, p := range prop {
		if err := unix.Mount("", full, "", uintptr(p), ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dest, err)
		}
	}
	return nil
}

// recursiveReadOnly makes the mount at full and every mount below it
// read-only ("rro", which docker asks for with read-only binds from API
// 1.44): an MS_RDONLY remount only reaches the top mount, so a filesystem
// mounted under the bind's source would stay writable in the container.
func recursiveReadOnly(full string) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, full, unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW, &attr); err != nil {
		return fmt.Errorf("make read-only recursively (rro): %w", err)
	}
	return nil
}

// remountBind applies flags to a fresh bind mount, keeping what the kernel
// locked on it (the target fd names the underlying dir, so use the path).
func remountBind(_ string, full string, flags int) error {
	var st unix.Statfs_t
	if err := unix.Statfs(full, &st); err != nil {
		return err
	}
	keep := int(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	return unix.Mount("", full, "", uintptr(unix.MS_BIND|unix.MS_REMOUNT|flags|keep), "")
}

// mountCgroup provides /sys/fs/cgroup: in a cgroup namespace the kernel's
// own cgroup filesystems (which show the container's cgroup as their root);
// otherwise bind mounts of the container's cgroup directories.
func mountCgroup(c *Config, dest string, flags int) error {
	hier, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return fmt.Errorf("read cgroup mounts: %w", err)
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	ro := flags & unix.MS_RDONLY
	base := flags &^ (unix.MS_RDONLY | unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	hostRoot := "/sys/fs/cgroup"
	unified := len(hier) == 1 && hier[0].FSType == "cgroup2" && hier[0].Mountpoint == hostRoot
	inNS := c.UnshareCgroupNS || hasNS(c, specs.CgroupNamespace)

	target, err := openInRoot(c.Rootfs, dest, false)
	if err != nil {
		return fmt.Errorf("mount %s: create destination: %w", dest, err)
	}
	defer target.Close()
	full := filepath.Join(c.Rootfs, dest)

	if unified {
		if inNS {
			err = unix.Mount("cgroup2", fdPath(target), "cgroup2", uintptr(base|ro), "")
		} else {
			err = unix.Mount(filepath.Join(hostRoot, own[""]), fdPath(target), "", unix.MS_BIND, "")
			if err == nil && ro != 0 {
				err = remountBind("", full, base|ro)
			}
		}
		if err != nil {
			return fmt.Errorf("mount cgroup2 on %s: %w", dest, err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", fdPath(target), "tmpfs", uintptr(base), "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dest, err)
	}
	for _, h := range hier {
		if !strings.HasPrefix(h.Mountpoint, hostRoot+"/") {
			continue
		}
		name := strings.TrimPrefix(h.Mountpoint, hostRoot+"/")
		if strings.Contains(name, "/") {
			continue
		}
		sub, err := openInRoot(c.Rootfs, filepath.Join(dest, name), false)
		if err != nil {
			return fmt.Errorf("mount cgroup %s: %w", name, err)
		}
		key := cgroupKey(h)
		if inNS {
			opts := key
			if h.FSType == "cgroup2" {
				err = unix.Mount("cgroup2", fdPath(sub), "cgroup2", uintptr(base|ro), "")
			} else {
				err = unix.Mount("cgroup", fdPath(sub), "cgroup", uintptr(base|ro), opts)
			}
		} else {
			rel := strings.TrimPrefix(own[key], h.Root)
			err = unix.Mount(filepath.Join(h.Mountpoint, rel), fdPath(sub), "", unix.MS_BIND, "")
			if err == nil {
				err = remountBind("", filepath.Join(full, name), base|ro)
			}
		}
		sub.Close()
		if err != nil {
			return fmt.Errorf("mount cgroup %s on %s: %w", name, dest, err)
		}
	}
	if ro != 0 {
		if err := unix.Mount("", full, "", uintptr(unix.MS_REMOUNT|base|ro), "mode=755"); err != nil {
			return fmt.Errorf("make %s read-only: %w", dest, err)
		}
	}
	return nil
}

// cgroupKey names a hierarchy the way /proc/self/cgroup does: its
// controllers ("cpu,cpuacct", "name=systemd"), or "" for cgroup2.
func cgroupKey(m *mountinfo.Info) string {
	if m.FSType == "cgroup2" {
		return ""
	}
	var keep []string
	for _, o := range strings.Split(m.VFSOptions, ",") {
		switch o {
		case "rw", "ro", "":
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(keep, ",")
}

// ownCgroups reads /proc/self/cgroup: hierarchy key -> our path in it.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out, sc.Err()
}

func hasNS(c *Config, t specs.LinuxNamespaceType) bool {
	for _, ns := range c.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// MountOptionNames lists every mount option berth applies (flags and
// propagation, rro), sorted, for `berth runtime features`. The runc
// extensions that ParseMountOptions accepts and ignores are not among them.
func MountOptionNames() []string {
	out := []string{"rro"}
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
