package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/specgen"
)

// IPC modes "shareable" and "container:<name>" need a /dev/shm that other
// containers can bind: as dockerd does, the daemon mounts the tmpfs of a
// shareable container on the host (its "shm path") and binds it into the
// container instead of the tmpfs specgen would mount inside the container's
// own mount namespace. A joiner binds its donor's shm path. A private
// container has no shm path, so joining its IPC namespace is refused.

// shmDir is the host mount point of a shareable container's /dev/shm.
func shmDir(c *Container) string { return filepath.Join(c.BundleDir, "shm") }

// shmPathOf returns the host path holding the /dev/shm of c, or "" when c
// does not share it; depth bounds a chain of container:<name> modes.
func (d *Daemon) shmPathOf(c *Container, depth int) string {
	c.mu.Lock()
	mode, dir := c.HostConfig.IpcMode, shmDir(c)
	c.mu.Unlock()
	switch {
	case mode.IsHost():
		return "/dev/shm"
	case mode.IsShareable():
		if isMounted(dir) {
			return dir
		}
	case mode.IsContainer() && depth < 8:
		donor, err := d.Get(mode.Container())
		if err == nil {
			return d.shmPathOf(donor, depth+1)
		}
	}
	return ""
}

// setupShm rewrites the /dev/shm mount of spec for the shareable and
// container:<name> IPC modes (mounting a shareable container's tmpfs).
func (d *Daemon) setupShm(c *Container, spec *specs.Spec) error {
	mode := c.HostConfig.IpcMode
	var src string
	switch {
	case mode.IsShareable():
		src = shmDir(c)
		if !isMounted(src) {
			if err := os.MkdirAll(src, 0o700); err != nil {
				return fmt.Errorf("create shm mount point %s: %w", src, err)
			}
			size := c.HostConfig.ShmSize
			if size <= 0 {
				size = specgen.DefaultShmSize
			}
			data := "mode=1777,size=" + strconv.FormatInt(size, 10)
			if err := unix.Mount("shm", src, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
				return fmt.Errorf("mount shm tmpfs at %s: %w", src, err)
			}
		}
	case mode.IsContainer():
		donor, err := d.Get(mode.Container())
		if err != nil {
			return fmt.Errorf("failed to join IPC namespace: %w", err)
		}
		src = d.shmPathOf(donor, 0)
		if src == "" {
			return errdefs.InvalidParameter(fmt.Errorf("container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", mode.Container()))
		}
	default:
		return nil
	}
	for i, m := range spec.Mounts {
		if m.Destination == "/dev/shm" && m.Type == "tmpfs" {
			spec.Mounts[i] = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}}
		}
	}
	return nil
}

// releaseShm unmounts a shareable container's /dev/shm tmpfs (its joiners
// keep their own references to it).
func (d *Daemon) releaseShm(c *Container) {
	dir := shmDir(c)
	if !isMounted(dir) {
		return
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		d.log.Warn("unmount shm", "id", c.ID, "path", dir, "err", err)
		return
	}
	os.Remove(dir)
}
