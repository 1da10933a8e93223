package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/internal/errdefs"
)

// Inspect answers `docker manifest`-style questions without pulling: the
// descriptor named resolves to (an index's, for a multi-platform image)
// and the platforms it offers. For an index they are its entries'
// platforms; for a single manifest the one in its image config.
func (c *Client) Inspect(ctx context.Context, named reference.Named) (ocispec.Descriptor, []ocispec.Platform, error) {
	desc, raw, err := c.FetchManifest(ctx, named, manifestRef(named))
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if isIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(fmt.Errorf("index %s of %s: %w", desc.Digest, reference.FamiliarName(named), err))
		}
		plats := []ocispec.Platform{}
		for _, m := range idx.Manifests {
			if m.Platform != nil {
				plats = append(plats, *m.Platform)
			}
		}
		return desc, plats, nil
	}
	// A single manifest: its platform is in the config. Resolving by the
	// digest just fetched keeps the answer consistent if the tag moves.
	byDigest, err := reference.WithDigest(reference.TrimNamed(named), desc.Digest)
	if err != nil {
		return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(err)
	}
	img, err := c.ResolveImage(ctx, byDigest, ocispec.Platform{})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(fmt.Errorf("config %s of %s: %w", img.Manifest.Config.Digest, reference.FamiliarName(named), err))
	}
	return desc, []ocispec.Platform{cfg.Platform}, nil
}
