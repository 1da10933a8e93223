package image

// MountView mounts img's files read-only at target without a read-write
// layer or a record (see snapshot.Store.MountView); unmount with
// UnmountRootfs. The image's snapshots are not protected from removal
// while the view is mounted: it is for short looks, such as a build step's.
func (s *Store) MountView(img *Image, target string) error {
	return s.snapshots.MountView(img.ChainIDs(), target)
}
