package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"berth/internal/errdefs"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// RWPath is the read-write layer directory of a container.
func (s *Store) RWPath(id string) string { return filepath.Join(s.containers, id, "rw") }

// UpperDir is the overlay upperdir of a container: its changes.
func (s *Store) UpperDir(id string) string { return filepath.Join(s.RWPath(id), "upper") }

func validID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return errdefs.InvalidParameter(fmt.Errorf("snapshot: invalid container id %q", id))
	}
	return nil
}

// PrepareRW creates containers/<id>/rw/{upper,work,lower}; lower stays empty
// and is the lowerdir of an image without layers.
func (s *Store) PrepareRW(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.containers, id), 0o710); err != nil {
		return fmt.Errorf("snapshot: prepare rw layer of %s: %w", id, err)
	}
	for _, d := range []string{"", "upper", "work", "lower"} {
		if err := os.Mkdir(filepath.Join(s.RWPath(id), d), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("snapshot: prepare rw layer of %s: %w", id, err)
		}
	}
	return nil
}

// RemoveRW deletes a container's read-write layer (it must be unmounted).
func (s *Store) RemoveRW(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	return removeAll(s.RWPath(id))
}

// Mount mounts at target the overlay of the snapshots chain (top first)
// under the container's upper dir.
func (s *Store) Mount(id string, chain []digest.Digest, target string) error {
	return s.mount(id, chain, target, false)
}

// MountVolatile is Mount for a container whose read-write layer is thrown
// away when it exits (docker run --rm). The overlay gets the "volatile"
// option (Linux 5.10+): no sync of the upper layer ever, above all none at
// unmount, where a plain overlay syncs the whole host file system that
// holds the upper dir — tens to hundreds of milliseconds on a busy host,
// the largest cost of a short `run --rm`. The price: a host crash may lose
// or tear what the container wrote there, and its own fsync calls on the
// root file system do not reach the disk (volumes are bind mounts and keep
// theirs) — nothing for a layer that is deleted at exit anyway. Kernels
// without the option get a plain overlay.
func (s *Store) MountVolatile(id string, chain []digest.Digest, target string) error {
	return s.mount(id, chain, target, true)
}

// volatileMarker is what the kernel leaves in the overlay's work dir after a
// volatile mount; while it exists the layer cannot be mounted again.
func (s *Store) volatileMarker(id string) string {
	return filepath.Join(s.RWPath(id), "work", "work", "incompat")
}

// mount does Mount and MountVolatile.
//
// mount(2) takes at most a page of options. When absolute lowerdir paths do
// not fit, the mount runs on a locked thread with its own working directory
// (unshare CLONE_FS) set to the snapshot root, so each lowerdir is a short
// relative "<hex>/diff": the rest of the process keeps its cwd. Deeper
// stacks still (over ~58 layers) go through fsconfig's "lowerdir+".
func (s *Store) mount(id string, chain []digest.Digest, target string, volatile bool) error {
	if err := validID(id); err != nil {
		return err
	}
	rw := s.RWPath(id)
	// A marker left by an earlier volatile mount of this layer refuses every
	// new mount. Only throw-away containers are mounted volatile, and such a
	// layer is mounted again only when the same container starts again
	// (docker restart): its contents are not worth the protection.
	if err := os.RemoveAll(s.volatileMarker(id)); err != nil {
		return fmt.Errorf("snapshot: remove volatile marker of %s: %w", id, err)
	}

	lowers := make([]string, len(chain))
	rel := make([]string, len(chain))
	for i, c := range chain {
		if !s.Exists(c) {
			return errdefs.NotFound(fmt.Errorf("snapshot: layer %s of container %s is missing", c, id))
		}
		lowers[i] = s.DiffPath(c)
		rel[i] = c.Encoded() + "/diff"
	}
	if len(chain) == 0 {
		lowers = []string{filepath.Join(rw, "lower")}
		rel = lowers
	}
	tail := ",upperdir=" + filepath.Join(rw, "upper") + ",workdir=" + filepath.Join(rw, "work") + overlayExtra()
	if volatile {
		tail += ",volatile"
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + tail
	if len(data) < os.Getpagesize()-1 {
		err := unix.Mount("overlay", target, "overlay", 0, data)
		if err != nil && volatile && errors.Is(err, unix.EINVAL) {
			// a kernel older than 5.10 knows no "volatile"
			return s.mount(id, chain, target, false)
		}
		if err != nil {
			return fmt.Errorf("snapshot: mount overlay of %s at %s: %w", id, target, err)
		}
		return nil
	}
	data = "lowerdir=" + strings.Join(rel, ":") + tail
	if len(data) >= os.Getpagesize()-1 {
		// lowerdir+ needs Linux 6.8, which knows volatile too.
		return mountFsconfig(lowers, filepath.Join(rw, "upper"), filepath.Join(rw, "work"), target, volatile)
	}
	errc := make(chan error, 1)
	go func() {
		// This thread's fs state is changed and never restored: without
		// UnlockOSThread the runtime retires the thread when we return.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare CLONE_FS: %w", err)
			return
		}
		if err := unix.Chdir(s.root); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("overlay", target, "overlay", 0, data)
	}()
	if err := <-errc; err != nil && volatile && errors.Is(err, unix.EINVAL) {
		return s.mount(id, chain, target, false)
	} else if err != nil {
		return fmt.Errorf("snapshot: mount overlay of %s at %s (relative lowerdirs): %w", id, target, err)
	}
	return nil
}

// mountFsconfig mounts an overlay through the new mount API, adding one
// lowerdir at a time ("lowerdir+", Linux 6.8+), for stacks too deep for a
// page of mount options.
func mountFsconfig(lowers []string, upper, work, target string, volatile bool) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("snapshot: fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("snapshot: %d layers do not fit one overlay mount on this kernel (lowerdir+: %w)", len(lowers), err))
		}
	}
	opts := [][2]string{{"upperdir", upper}, {"workdir", work}}
	if overlayExtra() != "" {
		opts = append(opts, [2]string{"index", "off"})
	}
	for _, kv := range opts {
		if err := unix.FsconfigSetString(fd, kv[0], kv[1]); err != nil {
			return fmt.Errorf("snapshot: overlay option %s: %w", kv[0], err)
		}
	}
	if volatile {
		if err := unix.FsconfigSetFlag(fd, "volatile"); err != nil {
			return fmt.Errorf("snapshot: overlay option volatile: %w", err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("snapshot: create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("snapshot: fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("snapshot: move overlay mount to %s: %w", target, err)
	}
	return nil
}

var overlayIndexParam = "/sys/module/overlay/parameters/index"

// overlayExtra turns off the inode index where the kernel has one: with it
// on, lower dirs shared by many containers' mounts are refused as in use.
func overlayExtra() string {
	if _, err := os.Stat(overlayIndexParam); err == nil {
		return ",index=off"
	}
	return ""
}

// Unmount unmounts target; a target that is not mounted is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("snapshot: unmount %s: %w", target, err)
}
