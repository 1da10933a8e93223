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

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// DeriveOptions say what a derived image adds to its parent: at most one
// of Layer (a tar stream) and ContainerID (the container's writable
// layer); with neither the image adds no layer and its history entry is
// marked empty, as docker's metadata-only build steps are.
type DeriveOptions struct {
	Layer       io.Reader
	ContainerID string
	Config      dockerspec.DockerOCIImageConfig
	// Created is the image's and the history entry's time; zero: now.
	Created   time.Time
	CreatedBy string
	Comment   string
	Author    string
}

// Derive creates an image from parent (nil: scratch) for an image build
// step. Unlike Commit the created time can be fixed and the layer can be
// left out, so that a build with SOURCE_DATE_EPOCH is reproducible.
func (s *Store) Derive(ctx context.Context, parent *Image, opts DeriveOptions) (digest.Digest, error) {
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
	}
	base.RootFS.Type = "layers"

	layerStream := opts.Layer
	done := make(chan error, 1)
	if opts.ContainerID != "" {
		upper := s.snapshots.UpperDir(opts.ContainerID)
		if _, err := os.Stat(upper); err != nil {
			return "", errdefs.NotFound(fmt.Errorf("image: container %s has no rootfs: %w", opts.ContainerID, err))
		}
		pr, pw := io.Pipe()
		go func() {
			err := archive.WriteTree(ctx, pw, upper, archive.WriteOptions{Whiteouts: true, Skip: mountTarget, MaxTime: opts.Created})
			pw.CloseWithError(err)
			done <- err
		}()
		defer pr.CloseWithError(fmt.Errorf("derive aborted"))
		layerStream = pr
	} else {
		done <- nil
	}

	created := opts.Created.UTC()
	if opts.Created.IsZero() {
		created = time.Now().UTC()
	}
	hist := ocispec.History{Created: &created, CreatedBy: opts.CreatedBy, Comment: opts.Comment, Author: opts.Author}
	if layerStream != nil {
		layer, err := o.addLayer(ctx, parentChain, layerStream, true)
		if werr := <-done; werr != nil && err == nil {
			err = werr
		}
		if err != nil {
			return "", fmt.Errorf("image: build layer for %q: %w", opts.CreatedBy, err)
		}
		layers = append(layers, layer)
		base.RootFS.DiffIDs = append(append([]digest.Digest(nil), base.RootFS.DiffIDs...), layer.diffID)
	} else {
		hist.EmptyLayer = true
	}
	base.Created = &created
	base.Author = opts.Author
	base.Config = opts.Config
	base.History = append(append([]ocispec.History(nil), base.History...), hist)
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

// mountTarget reports the empty files the runtime creates in a container's
// rootfs as targets of the /etc/hostname, /etc/hosts and /etc/resolv.conf
// bind mounts. Writes to them go to the daemon's copies, so, as with
// docker's init layer, a commit (and a RUN step) never includes them.
func mountTarget(rel string, st *unix.Stat_t) bool {
	switch rel {
	case "etc/hostname", "etc/hosts", "etc/resolv.conf":
		return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0
	}
	return false
}
