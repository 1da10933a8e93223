package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest returns the OCI manifest of an image and its canonical bytes,
// built from the stored config and layer blobs (the same bytes every time).
func (s *Store) Manifest(id digest.Digest) (ocispec.Manifest, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.manifestLocked(id)
}

func (s *Store) manifestLocked(id digest.Digest) (ocispec.Manifest, []byte, error) {
	img, ok := s.images[id]
	if !ok {
		return ocispec.Manifest{}, nil, notFound(id.String())
	}
	cfgSize, err := s.content.Size(id)
	if err != nil {
		return ocispec.Manifest{}, nil, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: cfgSize},
		Layers:    []ocispec.Descriptor{},
	}
	for _, l := range img.Layers {
		rec := s.layers[l.ChainID]
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: rec.MediaType, Digest: rec.Blob, Size: rec.BlobSize})
	}
	raw, err := json.Marshal(m)
	return m, raw, err
}

type savedImage struct {
	id       digest.Digest
	tags     []string // familiar
	manifest []byte
	blobs    []digest.Digest // layers bottom first
}

// Save writes the named images as one tarball that is both a docker-archive
// (manifest.json, repositories; what `docker load` reads) and an OCI image
// layout (oci-layout, index.json), with every blob under blobs/sha256/, as
// docker 25+ writes it. Layers are written as stored, compressed or not.
// An image named by tag carries that tag; one named by ID carries none.
func (s *Store) Save(ctx context.Context, w io.Writer, names []string) error {
	var list []*savedImage
	var leased []digest.Digest
	s.mu.Lock()
	for _, name := range names {
		img, err := s.resolveLocked(name)
		if err != nil {
			s.mu.Unlock()
			s.release(leased)
			return err
		}
		var tag string
		if key, err := NormalizeRef(name); err == nil && !isDigestRef(key) {
			for _, t := range img.RepoTags {
				if t == key {
					tag = key
				}
			}
		}
		var si *savedImage
		for _, x := range list {
			if x.id == img.ID {
				si = x
			}
		}
		if si == nil {
			_, raw, err := s.manifestLocked(img.ID)
			if err != nil {
				s.mu.Unlock()
				s.release(leased)
				return err
			}
			si = &savedImage{id: img.ID, manifest: raw}
			for _, l := range img.Layers {
				si.blobs = append(si.blobs, s.layers[l.ChainID].Blob)
			}
			s.lease(img.ID)
			s.lease(si.blobs...)
			leased = append(append(leased, img.ID), si.blobs...)
			list = append(list, si)
		}
		if tag != "" {
			si.tags = appendUnique(si.tags, tag)
		}
	}
	s.mu.Unlock()
	defer s.release(leased)
	return s.writeSave(ctx, w, list)
}

func (s *Store) release(ds []digest.Digest) {
	s.mu.Lock()
	s.unlease(ds...)
	s.mu.Unlock()
}

func appendUnique(l []string, v string) []string {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}

func (s *Store) writeSave(ctx context.Context, w io.Writer, list []*savedImage) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := s.content.Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Encoded(), Typeflag: tar.TypeReg, Mode: 0o644, Size: st.Size(), ModTime: epoch}); err != nil {
			return fmt.Errorf("save blob %s: %w", d, err)
		}
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("save blob %s: %w", d, err)
		}
		return nil
	}
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}

	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []manifestEntry
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	repos := map[string]map[string]string{}
	for _, si := range list {
		e := manifestEntry{Config: "blobs/sha256/" + si.id.Encoded(), RepoTags: si.tags, Layers: []string{}}
		for _, b := range si.blobs {
			if err := writeBlob(b); err != nil {
				return err
			}
			e.Layers = append(e.Layers, "blobs/sha256/"+b.Encoded())
		}
		if err := writeBlob(si.id); err != nil {
			return err
		}
		md := digest.FromBytes(si.manifest)
		if !written[md] {
			written[md] = true
			if err := writeFile("blobs/sha256/"+md.Encoded(), si.manifest); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(si.manifest))}
		if len(si.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range si.tags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return errdefs.InvalidParameter(err)
			}
			d := desc
			d.Annotations = map[string]string{annotationContainerdName: named.String()}
			if tagged, ok := named.(reference.Tagged); ok {
				d.Annotations[ocispec.AnnotationRefName] = tagged.Tag()
				if len(si.blobs) > 0 {
					repo := reference.FamiliarName(named)
					if repos[repo] == nil {
						repos[repo] = map[string]string{}
					}
					repos[repo][tagged.Tag()] = si.blobs[len(si.blobs)-1].Encoded()
				}
			}
			index.Manifests = append(index.Manifests, d)
		}
		manifest = append(manifest, e)
	}
	files := []struct {
		name string
		v    any
	}{
		{"index.json", index},
		{"manifest.json", manifest},
		{"oci-layout", ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
	}
	if len(repos) > 0 {
		files = append(files, struct {
			name string
			v    any
		}{"repositories", repos})
	}
	for _, f := range files {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(f.name, data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}
