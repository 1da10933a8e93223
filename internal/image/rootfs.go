package image

import (
	"context"
	"fmt"
	"os"

	"berth/internal/archive"
	"berth/internal/errdefs"
	"berth/internal/snapshot"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// PrepareRootfs creates the read-write layer of a container made from img
// (containers/<id>/rw/{upper,work}) and records that the container uses the
// image, which Delete then refuses to remove.
func (s *Store) PrepareRootfs(containerID string, img *Image) error {
	return s.PrepareRootfsWith(containerID, img, nil)
}

// PrepareRootfsWith is PrepareRootfs that also runs also (when not nil) in
// the transaction that records the rootfs, so that the caller's own record
// of the container is written in the same commit: one multi-record change,
// one transaction, one sync. also must not call the Store.
func (s *Store) PrepareRootfsWith(containerID string, img *Image, also func(*bolt.Tx) error) error {
	if err := s.snapshots.PrepareRW(containerID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[img.ID]; !ok {
		s.snapshots.RemoveRW(containerID)
		return notFound(img.ID.String())
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketRootfs).Put([]byte(containerID), []byte(img.ID))
	})
	if err != nil {
		s.snapshots.RemoveRW(containerID)
		return fmt.Errorf("image: record rootfs of %s: %w", containerID, err)
	}
	s.rootfs[containerID] = img.ID
	return nil
}

// MountRootfs mounts the container's root filesystem at target: an overlay
// of img's layers (top first) under the container's upper dir.
func (s *Store) MountRootfs(containerID string, img *Image, target string) error {
	if _, err := os.Stat(s.snapshots.UpperDir(containerID)); err != nil {
		return errdefs.NotFound(fmt.Errorf("image: container %s has no prepared rootfs: %w", containerID, err))
	}
	return s.snapshots.Mount(containerID, img.ChainIDs(), target)
}

// MountRootfsVolatile is MountRootfs for a container whose read-write
// layer is deleted when it exits (run --rm): see snapshot.MountVolatile.
func (s *Store) MountRootfsVolatile(containerID string, img *Image, target string) error {
	if _, err := os.Stat(s.snapshots.UpperDir(containerID)); err != nil {
		return errdefs.NotFound(fmt.Errorf("image: container %s has no prepared rootfs: %w", containerID, err))
	}
	return s.snapshots.MountVolatile(containerID, img.ChainIDs(), target)
}

// UnmountRootfs unmounts a root filesystem; one not mounted is no error.
func (s *Store) UnmountRootfs(target string) error { return snapshot.Unmount(target) }

// RemoveRootfs deletes a container's read-write layer and its record. It
// is idempotent.
func (s *Store) RemoveRootfs(containerID string) error {
	return s.RemoveRootfsWith(containerID, nil)
}

// RemoveRootfsWith is RemoveRootfs that also runs also (when not nil) in
// the transaction that deletes the rootfs record — even when there is none
// left to delete — so that the caller's record of the container goes in
// the same commit. also must not call the Store.
func (s *Store) RemoveRootfsWith(containerID string, also func(*bolt.Tx) error) error {
	if err := s.snapshots.RemoveRW(containerID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, recorded := s.rootfs[containerID]
	if !recorded && also == nil {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		if !recorded {
			return nil
		}
		return tx.Bucket(bucketRootfs).Delete([]byte(containerID))
	})
	if err != nil {
		return fmt.Errorf("image: remove rootfs record of %s: %w", containerID, err)
	}
	delete(s.rootfs, containerID)
	return nil
}

// RootfsSize is the size of the files in the container's upper dir (SizeRw).
func (s *Store) RootfsSize(containerID string) (int64, error) {
	return snapshot.ContentSize(s.snapshots.UpperDir(containerID))
}

// Changes lists the container's changes to its image, as `docker diff`.
func (s *Store) Changes(containerID string) ([]container.FilesystemChange, error) {
	s.mu.Lock()
	id, ok := s.rootfs[containerID]
	img := s.images[id]
	s.mu.Unlock()
	if !ok || img == nil {
		return nil, errdefs.NotFound(fmt.Errorf("image: no rootfs for container %s", containerID))
	}
	var lowers []string
	for _, c := range img.ChainIDs() {
		lowers = append(lowers, s.snapshots.DiffPath(c))
	}
	return archive.Changes(s.snapshots.UpperDir(containerID), lowers)
}

// Commit turns the container's upper dir into a new layer on top of parent
// (nil for none) and records a new image with cfg as its container config.
// It returns the new image's ID; tagging it is the caller's next step.
func (s *Store) Commit(ctx context.Context, containerID string, parent *Image, cfg dockerspec.DockerOCIImageConfig, author, comment string) (digest.Digest, error) {
	return s.Derive(ctx, parent, DeriveOptions{ContainerID: containerID, Config: cfg, Author: author, Comment: comment})
}
