package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"berth/internal/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Import makes a one-layer image from a root filesystem tar (plain, gzip or
// zstd), like `docker import`: changes are Dockerfile lines (see
// ApplyChanges), comment goes in the history ("Imported from -" when empty),
// ref (optional) tags the result. It returns the new image's ID.
func (s *Store) Import(ctx context.Context, r io.Reader, ref string, changes []string, comment string) (digest.Digest, error) {
	var tags []string
	if ref != "" {
		t, err := NormalizeRef(ref)
		if err != nil {
			return "", err
		}
		if isDigestRef(t) {
			return "", errdefs.InvalidParameter(fmt.Errorf("refusing to create a tag with a digest reference: %s", ref))
		}
		tags = append(tags, t)
	}
	cfg, err := ApplyChanges(dockerspec.DockerOCIImageConfig{}, changes)
	if err != nil {
		return "", err
	}
	o := s.newOperation()
	defer o.finish()
	layer, err := o.addLayer(ctx, "", r, false)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if comment == "" {
		comment = "Imported from -"
	}
	now := time.Now().UTC()
	img := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &now,
			Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
			History:  []ocispec.History{{Created: &now, Comment: comment}},
		},
		Config: cfg,
	}
	raw, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	p := &pendingImage{raw: raw, id: digest.FromBytes(raw), layers: []pendingLayer{layer}, tags: tags}
	if _, err := o.commit([]*pendingImage{p}); err != nil {
		return "", err
	}
	return p.id, nil
}
