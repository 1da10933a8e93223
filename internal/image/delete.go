package image

import (
	"context"
	"fmt"
	"sort"

	"berth/internal/errdefs"
	"berth/internal/snapshot"

	"github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

func shortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// Delete removes an image: its record and every reference to it, its
// config blob, and each layer (snapshot and blob) that no other image uses.
// It refuses with Conflict while a container made from the image exists
// (see PrepareRootfs) or another image was committed on top of it.
func (s *Store) Delete(id digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.deleteLocked(id)
	return err
}

// deleteLocked returns the disk bytes freed.
func (s *Store) deleteLocked(id digest.Digest) (int64, error) {
	img, ok := s.images[id]
	if !ok {
		return 0, notFound(id.String())
	}
	for cid, iid := range s.rootfs {
		if iid == id {
			return 0, errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", shortID(id), shortID(digest.Digest("sha256:"+cid))))
		}
	}
	for _, other := range s.images {
		if other.Parent == id {
			return 0, errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", shortID(id)))
		}
	}
	used := map[digest.Digest]bool{}
	for oid, other := range s.images {
		if oid == id {
			continue
		}
		for _, l := range other.Layers {
			used[l.ChainID] = true
		}
	}
	var dropLayers []digest.Digest
	for _, l := range img.Layers {
		if !used[l.ChainID] && s.leases[l.ChainID] == 0 {
			dropLayers = append(dropLayers, l.ChainID)
		}
	}
	refs := append(append([]string(nil), img.RepoTags...), img.RepoDigests...)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketImages).Delete([]byte(id)); err != nil {
			return err
		}
		for _, r := range refs {
			if err := tx.Bucket(bucketRefs).Delete([]byte(r)); err != nil {
				return err
			}
		}
		for _, c := range dropLayers {
			if err := tx.Bucket(bucketLayers).Delete([]byte(c)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("image: delete %s: %w", id, err)
	}
	delete(s.images, id)
	var blobs []digest.Digest
	for _, c := range dropLayers {
		blobs = append(blobs, s.layers[c].Blob)
		delete(s.layers, c)
	}
	// Files go after the records: a crash in between leaves garbage that
	// Open collects, never a record without its files.
	refBlobs, _ := s.referenced()
	var freed int64
	if !refBlobs[id] && s.leases[id] == 0 {
		n, _ := s.content.Delete(id)
		freed += n
	}
	for _, c := range dropLayers {
		n, _ := s.snapshots.Remove(c)
		freed += n
	}
	for _, b := range blobs {
		if !refBlobs[b] && s.leases[b] == 0 {
			n, _ := s.content.Delete(b)
			freed += n
		}
	}
	return freed, nil
}

// PruneFilter decides whether an image may be pruned (label and until
// filters); nil allows every image.
type PruneFilter func(*Image) bool

// Prune removes images no container uses and no other image is built on:
// only untagged ones when dangling is set, else all. Tags of removed
// images are reported as Untagged. SpaceReclaimed is the disk space really
// freed.
func (s *Store) Prune(ctx context.Context, dangling bool, filter PruneFilter) (*image.PruneReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &image.PruneReport{}
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		var cands []*Image
		for _, img := range s.images {
			if dangling && len(img.RepoTags) > 0 {
				continue
			}
			if s.inUseLocked(img.ID) || (filter != nil && !filter(img.clone())) {
				continue
			}
			cands = append(cands, img)
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
		if len(cands) == 0 {
			break
		}
		for _, img := range cands {
			tags := append(append([]string(nil), img.RepoTags...), img.RepoDigests...)
			n, err := s.deleteLocked(img.ID)
			if err != nil {
				return rep, err
			}
			for _, t := range tags {
				rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: t})
			}
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Deleted: img.ID.String()})
			rep.SpaceReclaimed += uint64(n)
		}
	}
	return rep, nil
}

// inUseLocked reports whether a container or a child image holds id.
func (s *Store) inUseLocked(id digest.Digest) bool {
	for _, iid := range s.rootfs {
		if iid == id {
			return true
		}
	}
	for _, other := range s.images {
		if other.Parent == id {
			return true
		}
	}
	return false
}

// Usage is what the image store adds to `docker system df`.
type Usage struct {
	// LayersSize is the disk space of all blobs and unpacked layers, as du
	// counts it: what `du -s -B1` of the data root grows by from an empty store.
	LayersSize int64
	Images     []ImageUsage
}

// ImageUsage is one image's share of the disk.
type ImageUsage struct {
	Image      *Image
	SharedSize int64 // unpacked bytes of its layers that other images use too
	Containers int   // containers made from it
}

// Usage reports disk usage for system df.
func (s *Store) Usage() (Usage, error) {
	var u Usage
	s.mu.Lock()
	defer s.mu.Unlock()
	// Blobs and snapshot dirs one by one: the store's fixed directories
	// are not layers, and du of an empty store counts them too.
	refBlobs, refChains := s.referenced()
	var paths []string
	for c := range refChains {
		paths = append(paths, s.snapshots.Path(c))
	}
	for b := range refBlobs {
		if p, err := s.content.Path(b); err == nil {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		n, err := snapshot.DiskUsage(p)
		if err != nil {
			return u, fmt.Errorf("image: disk usage of %s: %w", p, err)
		}
		u.LayersSize += n
	}
	users := map[digest.Digest]int{}
	for _, img := range s.images {
		for _, l := range img.Layers {
			users[l.ChainID]++
		}
	}
	containers := map[digest.Digest]int{}
	for _, iid := range s.rootfs {
		containers[iid]++
	}
	for _, img := range s.images {
		iu := ImageUsage{Image: img.clone(), Containers: containers[img.ID]}
		for _, l := range img.Layers {
			if users[l.ChainID] > 1 {
				iu.SharedSize += l.Size
			}
		}
		u.Images = append(u.Images, iu)
	}
	sort.Slice(u.Images, func(i, j int) bool { return u.Images[i].Image.ID < u.Images[j].Image.ID })
	return u, nil
}

// History returns an image's history as `docker history` shows it, newest
// first: entries that made a layer carry its size; the entry that made an
// image still in the store (this one or a parent) carries its ID and tags,
// the others "<missing>".
func (s *Store) History(id digest.Digest) ([]image.HistoryResponseItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[id]
	if !ok {
		return nil, notFound(id.String())
	}
	var items []image.HistoryResponseItem
	li := 0
	hist := img.Config.History
	for _, h := range hist {
		it := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			it.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && li < len(img.Layers) {
			it.Size = img.Layers[li].Size
			li++
		}
		items = append(items, it)
	}
	// Layers the history does not account for (configs without history).
	for ; li < len(img.Layers); li++ {
		it := image.HistoryResponseItem{ID: "<missing>", Size: img.Layers[li].Size}
		if img.Config.Created != nil {
			it.Created = img.Config.Created.Unix()
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		items = append(items, image.HistoryResponseItem{ID: "<missing>"})
	}
	mark := func(at int, m *Image) {
		if at >= 0 && at < len(items) {
			items[at].ID = m.ID.String()
			items[at].Tags = append([]string(nil), m.RepoTags...)
		}
	}
	mark(len(items)-1, img)
	for p := s.images[img.Parent]; p != nil; p = s.images[p.Parent] {
		if len(p.Config.History) == 0 {
			break
		}
		mark(len(p.Config.History)-1, p)
	}
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	return items, nil
}
