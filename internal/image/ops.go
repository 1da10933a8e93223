package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"

	"berth/internal/archive"
	"berth/internal/errdefs"
	"berth/internal/snapshot"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// operation is one change to the store in progress (a load, an import, a
// commit). It leases every blob and chain ID it writes or relies on, so
// that concurrent deletes and garbage collection leave them alone, and on
// finish removes what it wrote that no record came to refer to: a failed
// operation leaves no trace.
type operation struct {
	s      *Store
	leased []digest.Digest
	blobs  []digest.Digest // written by this operation
	snaps  []digest.Digest // unpacked by this operation
	layers map[digest.Digest]layerRecord
	dirty  bool // wrote files that must be synced before the records
}

func (s *Store) newOperation() *operation {
	return &operation{s: s, layers: map[digest.Digest]layerRecord{}}
}

func (o *operation) lease(ds ...digest.Digest) {
	o.s.mu.Lock()
	o.s.lease(ds...)
	o.s.mu.Unlock()
	o.leased = append(o.leased, ds...)
}

// finish drops the leases and removes what the operation wrote that no
// record refers to.
func (o *operation) finish() {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unlease(o.leased...)
	o.leased = nil
	refBlobs, refChains := s.referenced()
	for _, d := range o.blobs {
		if !refBlobs[d] && s.leases[d] == 0 {
			s.content.Delete(d)
		}
	}
	for _, c := range o.snaps {
		if !refChains[c] && s.leases[c] == 0 {
			s.snapshots.Remove(c)
		}
	}
}

// writeBlob stores r as a blob, verified against expected when given.
func (o *operation) writeBlob(r io.Reader, expected digest.Digest) (digest.Digest, error) {
	w, err := o.s.content.Writer()
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("write blob: %w", err))
	}
	d := w.Digest()
	if expected != "" && d != expected {
		return "", errdefs.InvalidParameter(fmt.Errorf("digest mismatch: expected %s, got %s", expected, d))
	}
	o.lease(d)
	if _, err := w.Commit(d); err != nil {
		return "", err
	}
	o.blobs = append(o.blobs, d)
	o.dirty = true
	return d, nil
}

func mediaTypeOf(c archive.Compression) string {
	switch c {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// unpackLayers makes sure a snapshot exists for every layer, unpacking the
// missing ones from their blobs while checking their diff IDs.
func (o *operation) unpackLayers(ctx context.Context, layers []pendingLayer) error {
	s := o.s
	for _, l := range layers {
		o.lease(l.chainID)
		s.mu.Lock()
		_, known := s.layers[l.chainID]
		s.mu.Unlock()
		if known && s.snapshots.Exists(l.chainID) {
			continue
		}
		if _, ok := o.layers[l.chainID]; ok {
			continue
		}
		var size int64
		mt := l.mediaType
		_, created, err := s.snapshots.Create(ctx, l.chainID, func(diff string) (digest.Digest, error) {
			f, err := s.content.Open(l.blob)
			if err != nil {
				return "", err
			}
			defer f.Close()
			dec, comp, err := archive.Decompress(f)
			if err != nil {
				return "", fmt.Errorf("layer %s: %w", l.diffID, err)
			}
			defer dec.Close()
			if mt == "" {
				mt = mediaTypeOf(comp)
			}
			h := sha256.New()
			tee := io.TeeReader(dec, h)
			if size, err = archive.Apply(ctx, diff, tee, s.applyOpts); err != nil {
				return "", fmt.Errorf("layer %s: %w", l.diffID, err)
			}
			if _, err := io.Copy(io.Discard, tee); err != nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("layer %s: %w", l.diffID, err))
			}
			if got := digest.NewDigest(digest.SHA256, h); got != l.diffID {
				return "", errdefs.InvalidParameter(fmt.Errorf("layer %s: diff ID mismatch: the content is %s", l.diffID, got))
			}
			return l.chainID, nil
		})
		if err != nil {
			return err
		}
		if created {
			o.snaps = append(o.snaps, l.chainID)
			o.dirty = true
		} else {
			// Unpacked by someone else meanwhile.
			if size, err = snapshot.ContentSize(s.snapshots.DiffPath(l.chainID)); err != nil {
				return err
			}
			if mt == "" {
				if mt, err = o.detectMediaType(l.blob); err != nil {
					return err
				}
			}
		}
		bs, err := s.content.Size(l.blob)
		if err != nil {
			return err
		}
		o.layers[l.chainID] = layerRecord{DiffID: l.diffID, Size: size, Blob: l.blob, MediaType: mt, BlobSize: bs}
	}
	return nil
}

func (o *operation) detectMediaType(blob digest.Digest) (string, error) {
	f, err := o.s.content.Open(blob)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 10)
	n, _ := io.ReadFull(f, head)
	c, err := archive.Detect(head[:n])
	return mediaTypeOf(c), err
}

// addLayer unpacks a new layer from a tar stream on top of parent (a chain
// ID, empty for a base layer) and stores its blob: the stream's bytes as
// they come, or gzip-compressed when compress is set (r is then a plain
// tar). It hashes while extracting; nothing is copied twice.
func (o *operation) addLayer(ctx context.Context, parent digest.Digest, r io.Reader, compress bool) (pendingLayer, error) {
	s := o.s
	w, err := s.content.Writer()
	if err != nil {
		return pendingLayer{}, err
	}
	defer w.Close()
	var (
		tarStream io.Reader
		raw       io.Reader
		gz        *gzip.Writer
		mt        string
	)
	if compress {
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		tarStream = io.TeeReader(r, gz)
		mt = ocispec.MediaTypeImageLayerGzip
	} else {
		raw = io.TeeReader(r, w)
		dec, comp, err := archive.Decompress(raw)
		if err != nil {
			return pendingLayer{}, err
		}
		defer dec.Close()
		tarStream = dec
		mt = mediaTypeOf(comp)
	}
	var pl pendingLayer
	var size int64
	chain, created, err := s.snapshots.Create(ctx, "", func(diff string) (digest.Digest, error) {
		h := sha256.New()
		tee := io.TeeReader(tarStream, h)
		var err error
		if size, err = archive.Apply(ctx, diff, tee, s.applyOpts); err != nil {
			return "", err
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return "", errdefs.InvalidParameter(fmt.Errorf("read layer: %w", err))
		}
		if raw != nil {
			if _, err := io.Copy(io.Discard, raw); err != nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("read layer: %w", err))
			}
		}
		pl.diffID = digest.NewDigest(digest.SHA256, h)
		pl.chainID = chainID(parent, pl.diffID)
		o.lease(pl.chainID) // before it becomes visible to garbage collection
		return pl.chainID, nil
	})
	if err != nil {
		return pendingLayer{}, err
	}
	if created {
		o.snaps = append(o.snaps, chain)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return pendingLayer{}, fmt.Errorf("compress layer: %w", err)
		}
	}
	pl.blob = w.Digest()
	o.lease(pl.blob)
	if _, err := w.Commit(pl.blob); err != nil {
		return pendingLayer{}, err
	}
	o.blobs = append(o.blobs, pl.blob)
	o.dirty = true
	pl.mediaType = mt
	o.layers[chain] = layerRecord{DiffID: pl.diffID, Size: size, Blob: pl.blob, MediaType: mt, BlobSize: w.Size()}
	return pl, nil
}

// commit records the images, their layers and tags in one transaction,
// after syncing the files they refer to. It returns docker's "Loaded
// image" messages.
func (o *operation) commit(pend []*pendingImage) ([]string, error) {
	s := o.s
	for _, p := range pend {
		if !s.content.Has(p.id) {
			if _, err := o.writeBlob(bytes.NewReader(p.raw), p.id); err != nil {
				return nil, err
			}
		}
	}
	if o.dirty {
		if err := s.snapshots.Sync(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []string
	newLayers := map[digest.Digest]layerRecord{}
	for _, p := range pend {
		for _, l := range p.layers {
			if _, ok := s.layers[l.chainID]; ok {
				continue
			}
			rec, ok := o.layers[l.chainID]
			if !ok {
				return nil, fmt.Errorf("image: layer %s was not unpacked", l.chainID)
			}
			newLayers[l.chainID] = rec
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		lb, ib, rb := tx.Bucket(bucketLayers), tx.Bucket(bucketImages), tx.Bucket(bucketRefs)
		for c, rec := range newLayers {
			v, _ := json.Marshal(rec)
			if err := lb.Put([]byte(c), v); err != nil {
				return err
			}
		}
		for _, p := range pend {
			if _, ok := s.images[p.id]; !ok {
				rec := imageRecord{Parent: p.parent}
				for _, l := range p.layers {
					rec.Chain = append(rec.Chain, l.chainID)
				}
				v, _ := json.Marshal(rec)
				if err := ib.Put([]byte(p.id), v); err != nil {
					return err
				}
			}
			for _, t := range p.tags {
				if err := rb.Put([]byte(t), []byte(p.id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: record images: %w", err)
	}
	for c, rec := range newLayers {
		s.layers[c] = rec
	}
	for _, p := range pend {
		if _, ok := s.images[p.id]; !ok {
			rec := imageRecord{Parent: p.parent}
			for _, l := range p.layers {
				rec.Chain = append(rec.Chain, l.chainID)
			}
			img, err := s.buildImage(p.id, rec, s.layers, p.raw)
			if err != nil {
				return nil, err
			}
			s.images[p.id] = img
		}
		if len(p.tags) == 0 {
			msgs = append(msgs, "Loaded image ID: "+p.id.String())
		}
		for _, t := range p.tags {
			if old := s.byRef(t); old != nil && old.ID != p.id {
				msgs = append(msgs, fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", t, old.ID))
				removeRef(old, t)
			}
			if old := s.byRef(t); old == nil {
				addRef(s.images[p.id], t)
			}
			msgs = append(msgs, "Loaded image: "+t)
		}
	}
	return msgs, nil
}
