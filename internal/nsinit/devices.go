package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

// defaultDevices are created in every container /dev, as runc and Docker do.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o666))},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: ptr(os.FileMode(0o666))},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: ptr(os.FileMode(0o666))},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: ptr(os.FileMode(0o666))},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: ptr(os.FileMode(0o666))},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: ptr(os.FileMode(0o666))},
}

var devLinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
}

// setupDev fills a fresh /dev tmpfs: device nodes, the usual links, and the
// pts and shm directories (their mounts, if any, come from the spec).
func setupDev(c *Config) error {
	devs := append([]specs.LinuxDevice{}, defaultDevices...)
	if c.Spec.Linux != nil {
		devs = append(devs, c.Spec.Linux.Devices...)
	}
	for _, d := range devs {
		if err := createDevice(c, d); err != nil {
			return err
		}
	}
	devDir, err := openInRoot(c.Rootfs, "/dev", false)
	if err != nil {
		return fmt.Errorf("open /dev in rootfs: %w", err)
	}
	defer devDir.Close()
	dfd := int(devDir.Fd())
	for _, l := range devLinks {
		name := filepath.Base(l[1])
		if err := unix.Symlinkat(l[0], dfd, name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s -> %s: %w", l[1], l[0], err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := unix.Mkdirat(dfd, d, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir /dev/%s: %w", d, err)
		}
	}
	return nil
}

func createDevice(c *Config, d specs.LinuxDevice) error {
	if !filepath.IsAbs(d.Path) || filepath.Dir(d.Path) == "/" {
		return fmt.Errorf("device path %q is not under /dev", d.Path)
	}
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
	case "b":
		mode = unix.S_IFBLK
	case "p":
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	parent, err := openInRoot(c.Rootfs, filepath.Dir(d.Path), false)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	defer parent.Close()
	pfd, name := int(parent.Fd()), filepath.Base(d.Path)
	// O_PATH handles cannot be used with mknodat; go through the magic link.
	dir := fdPath(parent)
	if !c.UserNS {
		err = unix.Mknod(dir+"/"+name, mode|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if err == nil || errors.Is(err, unix.EEXIST) {
			uid, gid := 0, 0
			if d.UID != nil {
				uid = int(*d.UID)
			}
			if d.GID != nil {
				gid = int(*d.GID)
			}
			if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown device %s: %w", d.Path, err)
			}
			return nil
		}
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
	}
	// No mknod in a user namespace: bind the host's node over an empty file.
	target, err := openInRoot(c.Rootfs, d.Path, true)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	defer target.Close()
	if err := unix.Mount(d.Path, fdPath(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind device %s: %w", d.Path, err)
	}
	return nil
}
