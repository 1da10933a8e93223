package snapshot

import (
	"errors"
	"fmt"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// ErrViewTooDeep says a chain's lowerdir list does not fit in one mount(2)
// call; MountView's caller then takes the read-write path (Mount).
var ErrViewTooDeep = errors.New("snapshot: layer chain too deep for a read-only view")

// MountView mounts the snapshots chain (top first) read-only at target,
// with no read-write layer: nothing is created on disk and nothing needs
// recording, so a look at an image's files (the builder reads the image
// of each COPY step and of COPY --from) costs one mount and one unmount.
// One layer is a read-only bind mount of its diff directory (overlayfs
// wants two lowerdirs without an upperdir); an empty chain mounts nothing.
// Unmount with Unmount.
func (s *Store) MountView(chain []digest.Digest, target string) error {
	lowers := make([]string, len(chain))
	for i, c := range chain {
		if !s.Exists(c) {
			return fmt.Errorf("snapshot: layer %s is missing", c)
		}
		lowers[i] = s.DiffPath(c)
	}
	switch len(chain) {
	case 0:
		return nil
	case 1:
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("snapshot: bind %s at %s: %w", lowers[0], target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("snapshot: make %s read-only: %w", target, err)
		}
		return nil
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + overlayExtra()
	if len(data) >= os.Getpagesize()-1 {
		return ErrViewTooDeep
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, data); err != nil {
		return fmt.Errorf("snapshot: mount read-only overlay at %s: %w", target, err)
	}
	return nil
}
