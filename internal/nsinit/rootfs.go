package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupRootfs is step 6 (and the sysctls of step 7). It runs only with a
// new mount namespace (the parent refuses a root without one).
func setupRootfs(c *Config, syncFD int) error {
	s := c.Spec
	rootfs := c.Rootfs

	prop := unix.MS_SLAVE | unix.MS_REC
	if s.Linux != nil && s.Linux.RootfsPropagation != "" {
		f, ok := propagationFlags[s.Linux.RootfsPropagation]
		if !ok {
			return fmt.Errorf("unknown rootfsPropagation %q", s.Linux.RootfsPropagation)
		}
		prop = f
	}
	if !c.HostMountNS {
		// Never in the caller's mount namespace: that would change the
		// host's propagation.
		if err := unix.Mount("", "/", "", uintptr(prop), ""); err != nil {
			return fmt.Errorf("make / %s: %w", s.Linux.RootfsPropagation, err)
		}
		// pivot_root refuses a shared parent mount, and a shared parent
		// would propagate our bind mounts back out.
		if err := parentMountPrivate(rootfs); err != nil {
			return err
		}
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", rootfs, err)
	}

	devMounted := false
	for _, m := range s.Mounts {
		if err := mountInto(c, m); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" {
			devMounted = m.Type == "tmpfs" || m.Type == "devtmpfs"
			if devMounted && m.Type == "devtmpfs" {
				devMounted = false // the kernel's /dev: nothing to create
			}
		}
	}
	if devMounted {
		if err := setupDev(c); err != nil {
			return err
		}
	}

	if c.RuntimeHooks {
		if err := WriteFrame(syncFD, Msg{Type: MsgHooks}, -1); err != nil {
			return err
		}
		var reply Msg
		if _, err := ReadFrame(syncFD, &reply); err != nil {
			return fmt.Errorf("wait for createRuntime hooks: %w", err)
		}
		if reply.Type != MsgHooksDone {
			return fmt.Errorf("createRuntime hooks: %s", reply.Error)
		}
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		if err := runHooks("createContainer", s.Hooks.CreateContainer, c.State); err != nil {
			return err
		}
	}

	switch {
	case c.HostMountNS:
		// No mount namespace of its own: pivot_root or MS_MOVE would
		// change the host's root. chroot, as runc does.
		if err := chrootInto(rootfs); err != nil {
			return err
		}
	case c.NoPivot:
		if err := moveRoot(rootfs); err != nil {
			return err
		}
	default:
		if err := pivotRoot(rootfs); err != nil {
			return err
		}
	}
	if s.Linux != nil && s.Linux.RootfsPropagation != "" && !c.HostMountNS {
		// The root is now a bind mount made under a private parent; give
		// it the propagation the spec asked for.
		if err := unix.Mount("", "/", "", uintptr(prop), ""); err != nil {
			return fmt.Errorf("make the container root %s: %w", s.Linux.RootfsPropagation, err)
		}
	}

	if s.Linux != nil {
		for k, v := range s.Linux.Sysctl {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if strings.Contains(k, "..") || strings.Contains(k, "/") {
				return fmt.Errorf("sysctl %q: bad name", k)
			}
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
			}
		}
	}
	return nil
}

// protectPaths is the end of step 7; it runs after pivot_root, where a
// symlink can no longer lead out of the container.
func protectPaths(s *specs.Spec) error {
	if s.Linux != nil {
		for _, p := range s.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return err
			}
		}
		for _, p := range s.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return err
			}
		}
	}
	if s.Root != nil && s.Root.Readonly {
		if err := remountRO("/"); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	return nil
}

func maskPath(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind %s read-only: %w", p, err)
	}
	if err := remountRO(p); err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

// remountRO makes the bind mount at p read-only, keeping the flags that a
// user namespace may have locked (nosuid, nodev, noexec, atime ones).
func remountRO(p string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	return unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, "")
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; no
	// directory for it is needed in the container.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir old root: %w", err)
	}
	// Never let the unmount propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// moveRoot is --no-pivot: the rootfs moved over / and chroot into it.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs %s: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs %s to /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// chrootInto enters rootfs with chroot(2), for a container that shares the
// caller's mount namespace.
func chrootInto(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs %s: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}

// parentMountPrivate makes the mount holding rootfs's parent directory
// private if it is shared.
func parentMountPrivate(rootfs string) error {
	parent := filepath.Dir(rootfs)
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(parent))
	if err != nil {
		return fmt.Errorf("read mounts above %s: %w", parent, err)
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if best == nil || len(m.Mountpoint) > len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil || !strings.Contains(best.Optional, "shared:") {
		return nil
	}
	if err := unix.Mount("", best.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s (the mount holding the rootfs) private: %w", best.Mountpoint, err)
	}
	return nil
}

// openInRoot creates (a directory, or a file when file is set) at dest inside
// root and returns an O_PATH handle of it. The walk never leaves root, even
// through symlinks or "..", and the handle pins what was found.
func openInRoot(root, dest string, file bool) (*os.File, error) {
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer rootDir.Close()
	if !file {
		return pathrs.MkdirAllHandle(rootDir, dest, 0o755)
	}
	// Resolve symlinks inside root first, then create the leaf without
	// following anything.
	full, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, full)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("%s resolves to the root itself", dest)
	}
	parent, err := pathrs.MkdirAllHandle(rootDir, filepath.Dir(rel), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	pfd, base := int(parent.Fd()), filepath.Base(rel)
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		var cfd int
		cfd, err = unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(cfd)
			fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), full), nil
}

// fdPath names what an O_PATH handle points to, for mount(2).
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
