package image

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"berth/internal/archive"
	"berth/internal/content"
	"berth/internal/errdefs"
	"berth/internal/snapshot"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullEvent is what AddPulled reports about one layer.
type PullEvent int

const (
	// LayerExists: the layer is unpacked already; it is not fetched.
	LayerExists PullEvent = iota
	// LayerFetching: the layer is missing and will be fetched.
	LayerFetching
	// LayerUnpacked: the layer was fetched, verified and unpacked.
	LayerUnpacked
)

// PulledLayer is one layer of an image arriving from a registry.
type PulledLayer struct {
	// Blob describes the layer as the manifest lists it: digest, size
	// and media type of the (usually compressed) bytes.
	Blob ocispec.Descriptor
	// Open streams the blob's bytes. It is called only for a missing
	// layer, at most once per AddPulled, and may be called from several
	// goroutines at once for different layers.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Pulled is an image arriving from a registry, for AddPulled.
type Pulled struct {
	Config []byte        // the config blob as the registry serves it
	Layers []PulledLayer // bottom first, as in the manifest
	// Refs are the familiar references to point at the image once it is
	// complete: "127.0.0.1:5000/busybox:latest" and/or
	// "127.0.0.1:5000/busybox@sha256:<manifest digest>".
	Refs []string
	// Concurrency bounds the layers fetched at once (3 when zero).
	Concurrency int
	// Progress, when set, hears about each layer (by index in Layers).
	// Calls may come from several goroutines.
	Progress func(layer int, ev PullEvent)
}

// AddPulled stores an image from a registry: each missing layer is streamed
// from its Open into the content store and, at the same time, decompressed
// and unpacked into its snapshot, while both the blob digest and the diff
// ID are checked. Layers are fetched concurrently. The image and its refs
// are recorded in one transaction only after every layer is in place, so a
// failed or cancelled pull leaves nothing visible and nothing behind.
func (s *Store) AddPulled(ctx context.Context, p Pulled) (*Image, error) {
	pend, err := parseConfig(p.Config)
	if err != nil {
		return nil, err
	}
	if len(p.Layers) != len(pend.layers) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image %s: the manifest lists %d layers but the config %d", pend.id, len(p.Layers), len(pend.layers)))
	}
	for _, r := range p.Refs {
		key, err := NormalizeRef(r)
		if err != nil {
			return nil, err
		}
		pend.tags = append(pend.tags, key)
	}
	o := s.newOperation()
	defer o.finish()

	progress := p.Progress
	if progress == nil {
		progress = func(int, PullEvent) {}
	}
	// Leases are taken up front, in this goroutine: operation's
	// bookkeeping is not safe for concurrent use.
	var missing []int
	for i, pl := range p.Layers {
		if err := pl.Blob.Digest.Validate(); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("image %s: layer %d: bad digest %q", pend.id, i, pl.Blob.Digest))
		}
		l := &pend.layers[i]
		l.blob = pl.Blob.Digest
		l.mediaType = layerMediaType(pl.Blob.MediaType)
		o.lease(l.chainID, l.blob)
		s.mu.Lock()
		_, known := s.layers[l.chainID]
		s.mu.Unlock()
		if known && s.snapshots.Exists(l.chainID) {
			progress(i, LayerExists)
			continue
		}
		missing = append(missing, i)
		progress(i, LayerFetching)
	}

	conc := p.Concurrency
	if conc <= 0 {
		conc = 3
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, conc)
	)
	seen := map[digest.Digest]bool{}
	for _, i := range missing {
		l := pend.layers[i]
		if seen[l.chainID] {
			continue
		}
		seen[l.chainID] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			rec, created, wrote, err := s.pullLayer(ctx, l, p.Layers[i])
			mu.Lock()
			defer mu.Unlock()
			// finish() removes what no record ends up referencing
			if wrote {
				o.blobs = append(o.blobs, l.blob)
			}
			if created {
				o.snaps = append(o.snaps, l.chainID)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			o.dirty = true
			o.layers[l.chainID] = rec
			progress(i, LayerUnpacked)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := o.commit([]*pendingImage{pend}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[pend.id]
	if !ok {
		return nil, fmt.Errorf("image %s: not recorded after pull", pend.id)
	}
	return img.clone(), nil
}

// pullLayer streams one layer into the content store and its snapshot at
// once. It returns the layer's record, whether it created the snapshot
// and whether it stored the blob.
func (s *Store) pullLayer(ctx context.Context, l pendingLayer, pl PulledLayer) (rec layerRecord, created, wrote bool, err error) {
	fetch := func() (io.ReadCloser, *content.Writer, error) {
		rc, err := pl.Open(ctx)
		if err != nil {
			return nil, nil, err
		}
		w, err := s.content.Writer()
		if err != nil {
			rc.Close()
			return nil, nil, err
		}
		return rc, w, nil
	}
	mt := l.mediaType
	var size int64
	_, created, err = s.snapshots.Create(ctx, l.chainID, func(diff string) (digest.Digest, error) {
		rc, w, err := fetch()
		if err != nil {
			return "", err
		}
		defer rc.Close()
		defer w.Close()
		// The registry may send more than the manifest says: read one byte
		// past the size to notice.
		raw := io.TeeReader(io.LimitReader(rc, pl.Blob.Size+1), w)
		dec, comp, err := archive.Decompress(raw)
		if err != nil {
			return "", errdefs.InvalidParameter(fmt.Errorf("layer %s: %w", pl.Blob.Digest, err))
		}
		defer dec.Close()
		if mt == "" {
			mt = mediaTypeOf(comp)
		}
		h := sha256.New()
		tee := io.TeeReader(dec, h)
		if size, err = archive.Apply(ctx, diff, tee, s.applyOpts); err != nil {
			return "", fmt.Errorf("layer %s: %w", pl.Blob.Digest, err)
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return "", fmt.Errorf("layer %s: %w", pl.Blob.Digest, err)
		}
		if _, err := io.Copy(io.Discard, raw); err != nil {
			return "", fmt.Errorf("layer %s: %w", pl.Blob.Digest, err)
		}
		if err := verifyBlob(w, pl.Blob); err != nil {
			return "", err
		}
		if got := digest.NewDigest(digest.SHA256, h); got != l.diffID {
			return "", errdefs.InvalidParameter(fmt.Errorf("layer %s: diff ID mismatch: the config says %s, the content is %s", pl.Blob.Digest, l.diffID, got))
		}
		if _, err := w.Commit(pl.Blob.Digest); err != nil {
			return "", err
		}
		wrote = true
		return l.chainID, nil
	})
	if err != nil {
		// the blob may be committed even though the snapshot failed (e.g.
		// cancelled by another layer's error): report it for clean-up
		return layerRecord{}, false, wrote, err
	}
	if !created {
		// Unpacked by someone else meanwhile; their blob may never be
		// committed: make sure ours is there.
		if size, err = snapshot.ContentSize(s.snapshots.DiffPath(l.chainID)); err != nil {
			return layerRecord{}, created, wrote, err
		}
		if !s.content.Has(pl.Blob.Digest) {
			rc, w, err := fetch()
			if err != nil {
				return layerRecord{}, created, wrote, err
			}
			_, err = io.Copy(w, io.LimitReader(rc, pl.Blob.Size+1))
			rc.Close()
			if err == nil {
				err = verifyBlob(w, pl.Blob)
			}
			if err == nil {
				_, err = w.Commit(pl.Blob.Digest)
			}
			w.Close()
			if err != nil {
				return layerRecord{}, created, wrote, fmt.Errorf("layer %s: %w", pl.Blob.Digest, err)
			}
			wrote = true
		}
		if mt == "" {
			if mt, err = s.newOperation().detectMediaType(pl.Blob.Digest); err != nil {
				return layerRecord{}, created, wrote, err
			}
		}
	}
	bs, err := s.content.Size(pl.Blob.Digest)
	if err != nil {
		return layerRecord{}, created, wrote, err
	}
	return layerRecord{DiffID: l.diffID, Size: size, Blob: pl.Blob.Digest, MediaType: mt, BlobSize: bs}, created, wrote, nil
}

// verifyBlob checks the bytes written against the manifest's descriptor.
func verifyBlob(w *content.Writer, desc ocispec.Descriptor) error {
	if w.Size() != desc.Size {
		return errdefs.InvalidParameter(fmt.Errorf("layer %s: size mismatch: the manifest says %d bytes, got %d", desc.Digest, desc.Size, w.Size()))
	}
	if got := w.Digest(); got != desc.Digest {
		return errdefs.InvalidParameter(fmt.Errorf("layer %s: digest mismatch: got %s", desc.Digest, got))
	}
	return nil
}
