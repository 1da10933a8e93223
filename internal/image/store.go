// Package image is berth's image store: images, their references (tags),
// loading and saving docker-archive and OCI-layout tarballs, importing root
// filesystems, and the container root filesystems built from image layers.
// The daemon calls the Store; blobs live in internal/content and unpacked
// layers in internal/snapshot.
//
// The data root, as this store lays it out:
//
//	<root>/
//	├── metadata.db                      bbolt, opened by the daemon; this store's buckets:
//	│                                      images    <image id>     -> imageRecord (JSON)
//	│                                      refs      <familiar ref> -> image id ("busybox:latest", "a/b@sha256:..")
//	│                                      layers    <chain id>     -> layerRecord (JSON)
//	│                                      rootfs    <container id> -> image id
//	├── content/
//	│   ├── blobs/sha256/<hex>           image configs and layer blobs (as loaded: tar, tar+gzip, tar+zstd)
//	│   └── ingest/                      blobs being written (removed by Open)
//	├── snapshots/
//	│   ├── <chain id hex>/
//	│   │   ├── diff/                    the layer unpacked, whiteouts in overlay form
//	│   │   └── committed                marker, written last
//	│   └── ingest-<random>/             a layer being unpacked (removed by Open)
//	└── containers/<id>/
//	    └── rw/{upper,work,lower}        a container's overlay dirs (the daemon owns the rest of <id>/)
//
// An image's ID is the sha256 of its config blob as stored. Layers are
// unpacked once per chain ID and shared. Every change to the records is one
// bbolt transaction, made after the files it refers to are in place and
// synced; files no record refers to are garbage that Open removes, so a
// kill -9 at any point leaves a consistent store.
package image

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"berth/internal/archive"
	"berth/internal/content"
	"berth/internal/snapshot"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketImages = []byte("images")
	bucketRefs   = []byte("refs")
	bucketLayers = []byte("layers")
	bucketRootfs = []byte("rootfs")
)

// maxConfigSize bounds config and manifest JSON read into memory.
const maxConfigSize = 8 << 20

// Layer is one layer of an image.
type Layer struct {
	DiffID, ChainID digest.Digest
	Size            int64 // bytes of file content once unpacked
}

// Image is an image as the daemon sees it. Values returned by the Store are
// copies: changing them changes nothing stored.
type Image struct {
	ID          digest.Digest // digest of the config blob, as docker
	Config      ocispec.Image
	Layers      []Layer  // bottom first
	RepoTags    []string // familiar form: "busybox:latest", "127.0.0.1:5000/a:b"
	RepoDigests []string
	Size        int64         // sum of the unpacked layer sizes
	Parent      digest.Digest // the image it was committed from, if any

	// Docker's additions to the config (Healthcheck, OnBuild, Shell),
	// which ocispec.ImageConfig does not carry.
	DockerExt dockerspec.DockerOCIImageConfigExt
}

// DockerConfig is the image's container config with docker's additions,
// the shape of ImageInspect's Config.
func (img *Image) DockerConfig() dockerspec.DockerOCIImageConfig {
	return dockerspec.DockerOCIImageConfig{ImageConfig: img.Config.Config, DockerOCIImageConfigExt: img.DockerExt}
}

// ChainIDs returns the chain IDs of the image's layers, top first: the
// order of overlay lowerdirs.
func (img *Image) ChainIDs() []digest.Digest {
	out := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		out[len(img.Layers)-1-i] = l.ChainID
	}
	return out
}

func (img *Image) clone() *Image {
	c := *img
	c.Layers = append([]Layer(nil), img.Layers...)
	c.RepoTags = append([]string(nil), img.RepoTags...)
	c.RepoDigests = append([]string(nil), img.RepoDigests...)
	return &c
}

// imageRecord is what bbolt holds for an image; the rest is in its config.
type imageRecord struct {
	Parent digest.Digest   `json:"parent,omitempty"`
	Chain  []digest.Digest `json:"chain"` // chain IDs, bottom first
}

// layerRecord is what bbolt holds for an unpacked layer.
type layerRecord struct {
	DiffID    digest.Digest `json:"diff_id"`
	Size      int64         `json:"size"`
	Blob      digest.Digest `json:"blob"`
	MediaType string        `json:"media_type"`
	BlobSize  int64         `json:"blob_size"`
}

// Store is the image store. Its methods are safe for concurrent use.
type Store struct {
	root      string
	db        *bolt.DB
	content   *content.Store
	snapshots *snapshot.Store
	applyOpts archive.ApplyOptions

	mu     sync.Mutex
	images map[digest.Digest]*Image // by ID, with RepoTags filled
	layers map[digest.Digest]layerRecord
	rootfs map[string]digest.Digest // container ID -> image ID
	leases map[digest.Digest]int    // chain IDs and blobs that an operation in progress still needs

	// unreadable is set when a record could not be read back: garbage
	// collection then stays off, rather than deleting what it cannot see
	// is in use.
	unreadable bool
}

// Open opens the image store in the data root, with its records in db, and
// removes what a crash left behind: temp files, half-unpacked snapshots,
// and blobs and snapshots no record refers to.
func Open(root string, db *bolt.DB) (*Store, error) {
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	ss, err := snapshot.Open(filepath.Join(root, "snapshots"), filepath.Join(root, "containers"))
	if err != nil {
		return nil, err
	}
	s := &Store{
		root: root, db: db, content: cs, snapshots: ss,
		applyOpts: archive.ApplyOptions{NoChown: os.Geteuid() != 0},
		images:    map[digest.Digest]*Image{},
		layers:    map[digest.Digest]layerRecord{},
		rootfs:    map[string]digest.Digest{},
		leases:    map[digest.Digest]int{},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs, bucketLayers, bucketRootfs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: create buckets: %w", err)
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unreadable {
		slog.Warn("image: some records are unreadable; not collecting garbage", "root", root)
	} else {
		s.collectGarbage()
	}
	return s, nil
}

// SetAllowDevices lets layers carry device nodes (off by default).
func (s *Store) SetAllowDevices(allow bool) {
	s.mu.Lock()
	s.applyOpts.AllowDevices = allow
	s.mu.Unlock()
}

// reload rebuilds the in-memory index from the records and config blobs.
func (s *Store) reload() error {
	images := map[digest.Digest]*Image{}
	layers := map[digest.Digest]layerRecord{}
	rootfs := map[string]digest.Digest{}
	unreadable := false
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketLayers).ForEach(func(k, v []byte) error {
			var r layerRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("layer record %s: %w", k, err)
			}
			layers[digest.Digest(k)] = r
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var r imageRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("image record %s: %w", k, err)
			}
			img, err := s.buildImage(digest.Digest(k), r, layers, nil)
			if err != nil {
				slog.Warn("image: skipping unreadable image", "id", string(k), "err", err)
				unreadable = true
				return nil
			}
			images[img.ID] = img
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			if img, ok := images[digest.Digest(v)]; ok {
				addRef(img, string(k))
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketRootfs).ForEach(func(k, v []byte) error {
			rootfs[string(k)] = digest.Digest(v)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("image: read records: %w", err)
	}
	s.mu.Lock()
	s.images, s.layers, s.rootfs = images, layers, rootfs
	s.unreadable = unreadable
	s.mu.Unlock()
	return nil
}

// buildImage assembles an Image from its record and config blob.
// raw is the config's bytes, read from the blob when nil.
func (s *Store) buildImage(id digest.Digest, r imageRecord, layers map[digest.Digest]layerRecord, raw []byte) (*Image, error) {
	if raw == nil {
		var err error
		if raw, err = s.content.ReadAll(id, maxConfigSize); err != nil {
			return nil, err
		}
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("image config %s: %w", id, err)
	}
	img := &Image{ID: id, Parent: r.Parent}
	img.Config = cfg.Image
	img.Config.Config = cfg.Config.ImageConfig
	img.DockerExt = cfg.Config.DockerOCIImageConfigExt
	for i, c := range r.Chain {
		l, ok := layers[c]
		if !ok {
			return nil, fmt.Errorf("image %s: layer %s has no record", id, c)
		}
		if i < len(cfg.RootFS.DiffIDs) && cfg.RootFS.DiffIDs[i] != l.DiffID {
			return nil, fmt.Errorf("image %s: layer %d diff ID mismatch", id, i)
		}
		img.Layers = append(img.Layers, Layer{DiffID: l.DiffID, ChainID: c, Size: l.Size})
		img.Size += l.Size
	}
	return img, nil
}

// addRef records a familiar reference on an image's RepoTags or RepoDigests.
func addRef(img *Image, ref string) {
	if isDigestRef(ref) {
		img.RepoDigests = append(img.RepoDigests, ref)
		sort.Strings(img.RepoDigests)
		return
	}
	img.RepoTags = append(img.RepoTags, ref)
	sort.Strings(img.RepoTags)
}

func removeRef(img *Image, ref string) {
	del := func(l []string) []string {
		out := l[:0]
		for _, r := range l {
			if r != ref {
				out = append(out, r)
			}
		}
		return out
	}
	img.RepoTags = del(img.RepoTags)
	img.RepoDigests = del(img.RepoDigests)
}

func (s *Store) lease(ds ...digest.Digest) {
	for _, d := range ds {
		s.leases[d]++
	}
}

func (s *Store) unlease(ds ...digest.Digest) {
	for _, d := range ds {
		if s.leases[d]--; s.leases[d] <= 0 {
			delete(s.leases, d)
		}
	}
}

// referenced returns the blobs and the chain IDs that records refer to,
// apart: an uncompressed base layer's blob has its chain ID's digest.
// Call with s.mu held.
func (s *Store) referenced() (blobs, chains map[digest.Digest]bool) {
	blobs, chains = map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for id := range s.images {
		blobs[id] = true
	}
	for c, l := range s.layers {
		chains[c] = true
		blobs[l.Blob] = true
	}
	return blobs, chains
}

// collectGarbage removes blobs and snapshots that no record refers to and
// no operation in progress holds, and layer records no image uses. It
// returns the disk bytes freed. Call with s.mu held.
func (s *Store) collectGarbage() int64 {
	if s.unreadable {
		return 0
	}
	var freed int64
	usedChains := map[digest.Digest]bool{}
	for _, img := range s.images {
		for _, l := range img.Layers {
			usedChains[l.ChainID] = true
		}
	}
	var dropLayers []digest.Digest
	for c := range s.layers {
		if !usedChains[c] && s.leases[c] == 0 {
			dropLayers = append(dropLayers, c)
		}
	}
	if len(dropLayers) > 0 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLayers)
			for _, c := range dropLayers {
				if err := b.Delete([]byte(c)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			slog.Warn("image: dropping unused layer records", "err", err)
		} else {
			for _, c := range dropLayers {
				delete(s.layers, c)
			}
		}
	}
	refBlobs, refChains := s.referenced()
	if chains, err := s.snapshots.List(); err == nil {
		for _, c := range chains {
			if !refChains[c] && s.leases[c] == 0 {
				n, err := s.snapshots.Remove(c)
				if err != nil {
					slog.Warn("image: removing unused snapshot", "chain", c, "err", err)
				}
				freed += n
			}
		}
	}
	var blobs []digest.Digest
	s.content.Walk(func(d digest.Digest) error {
		if !refBlobs[d] && s.leases[d] == 0 {
			blobs = append(blobs, d)
		}
		return nil
	})
	for _, d := range blobs {
		n, err := s.content.Delete(d)
		if err != nil {
			slog.Warn("image: removing unused blob", "blob", d, "err", err)
		}
		freed += n
	}
	return freed
}
