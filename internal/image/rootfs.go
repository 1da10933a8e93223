package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"berth/internal/archive"
	"berth/internal/errdefs"
	"berth/internal/snapshot"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	upper := s.snapshots.UpperDir(containerID)
	if _, err := os.Stat(upper); err != nil {
		return "", errdefs.NotFound(fmt.Errorf("image: container %s has no rootfs: %w", containerID, err))
	}
	o := s.newOperation()
	defer o.finish()

	var base dockerspec.DockerOCIImage
	var layers []pendingLayer
	var parentChain, parentID digest.Digest
	if parent != nil {
		raw, err := s.content.ReadAll(parent.ID, maxConfigSize)
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(raw, &base); err != nil {
			return "", fmt.Errorf("image: parent config %s: %w", parent.ID, err)
		}
		for _, l := range parent.Layers {
			o.lease(l.ChainID)
			layers = append(layers, pendingLayer{diffID: l.DiffID, chainID: l.ChainID})
			parentChain = l.ChainID
		}
		parentID = parent.ID
		o.lease(parentID)
		s.mu.Lock()
		_, ok := s.images[parentID]
		s.mu.Unlock()
		if !ok {
			return "", notFound(parentID.String())
		}
	} else {
		base.Platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
		base.RootFS.Type = "layers"
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := archive.WriteTree(ctx, pw, upper, archive.WriteOptions{Whiteouts: true})
		pw.CloseWithError(err)
		done <- err
	}()
	layer, err := o.addLayer(ctx, parentChain, pr, true)
	pr.CloseWithError(fmt.Errorf("commit aborted"))
	if werr := <-done; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return "", fmt.Errorf("image: commit container %s: %w", containerID, err)
	}
	layers = append(layers, layer)

	now := time.Now().UTC()
	base.Created = &now
	base.Author = author
	base.Config = cfg
	base.RootFS.Type = "layers"
	base.RootFS.DiffIDs = append(append([]digest.Digest(nil), base.RootFS.DiffIDs...), layer.diffID)
	base.History = append(append([]ocispec.History(nil), base.History...), ocispec.History{Created: &now, Author: author, Comment: comment})
	raw, err := json.Marshal(base)
	if err != nil {
		return "", err
	}
	p := &pendingImage{raw: raw, id: digest.FromBytes(raw), layers: layers, parent: parentID}
	if _, err := o.commit([]*pendingImage{p}); err != nil {
		return "", err
	}
	return p.id, nil
}
