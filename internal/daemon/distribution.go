package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.etcd.io/bbolt"

	regclient "berth/internal/registry/client"
)

// What the daemon remembers about registries, in metadata.db:
//
//	pulled-manifests  <image id>         -> []pulledManifest (JSON): the manifests an image was pulled by
//	push-compressed   <uncompressed blob> -> ocispec.Descriptor (JSON): the gzip blob it was pushed as
//
// Both are hints: a push checks them against the store and the registry,
// so a stale or lost entry costs a recompression or a rebuilt manifest,
// never a wrong push.
var (
	pulledManifestsBucket = []byte("pulled-manifests")
	pushCompressedBucket  = []byte("push-compressed")
)

// maxPulledManifests bounds the manifests remembered per image (the
// same image pulled by several manifests: other compressions, media types).
const maxPulledManifests = 4

// pulledManifest is a manifest exactly as a registry served it.
type pulledManifest struct {
	MediaType string `json:"media_type"`
	Raw       []byte `json:"raw"`
}

// registryClient returns a registry client speaking with creds, and with
// the daemon's mirrors and insecure registries (daemon.json). maxAttempts
// bounds retries (the client's default when zero).
func (d *Daemon) registryClient(creds regclient.Credentials, maxAttempts int) *regclient.Client {
	return regclient.New(regclient.Options{
		UserAgent:          "berth/" + runtime.Version(),
		Credentials:        func(string) regclient.Credentials { return creds },
		MaxAttempts:        maxAttempts,
		Mirrors:            d.cfg.RegistryMirrors,
		InsecureRegistries: d.cfg.InsecureRegistries,
		CertsDirs:          d.cfg.RegistryCertsDirs,
	})
}

// recordPulledManifest remembers the manifest image id was pulled by, most
// recent first, so that a push can send the same bytes (and so keep the
// digest) instead of a manifest rebuilt from the store.
func (d *Daemon) recordPulledManifest(id digest.Digest, mediaType string, raw []byte) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(pulledManifestsBucket)
		if err != nil {
			return err
		}
		var list []pulledManifest
		if v := b.Get([]byte(id)); v != nil {
			json.Unmarshal(v, &list) // a damaged hint is replaced
		}
		out := []pulledManifest{{MediaType: mediaType, Raw: raw}}
		want := digest.FromBytes(raw)
		for _, m := range list {
			if digest.FromBytes(m.Raw) != want && len(out) < maxPulledManifests {
				out = append(out, m)
			}
		}
		v, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

// verbatimPush is a manifest an image was pulled by, to push unchanged.
type verbatimPush struct {
	m         ocispec.Manifest
	mediaType string
	raw       []byte
	// linked are the layers (by index) not stored here (the daemon had
	// them unpacked from elsewhere and never fetched these blobs) that the
	// target registry has or mounted: nothing to send for them.
	linked map[int]linkedBlob
}

type linkedBlob struct {
	res  regclient.BlobPush
	from reference.Named
}

// pulledManifestFor returns a manifest image id was pulled by that can be
// pushed to named unchanged, keeping its digest: each blob it lists is in
// the store as those very bytes, or already in (or mountable into) named's
// repository. ok is false when there is none: the caller builds one.
func (d *Daemon) pulledManifestFor(ctx context.Context, c *regclient.Client, named reference.Named, id digest.Digest, mountFrom []reference.Named) (v verbatimPush, ok bool) {
	var list []pulledManifest
	d.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(pulledManifestsBucket); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				json.Unmarshal(v, &list)
			}
		}
		return nil
	})
	for _, pm := range list {
		var man ocispec.Manifest
		if json.Unmarshal(pm.Raw, &man) != nil || man.Config.Digest != id || !d.hasBlob(man.Config) {
			continue
		}
		v := verbatimPush{m: man, mediaType: pm.MediaType, raw: pm.Raw, linked: map[int]linkedBlob{}}
		complete := true
		for i, l := range man.Layers {
			if d.hasBlob(l) {
				continue
			}
			res, from, ok, err := c.LinkBlob(ctx, named, l.Digest, mountFrom)
			if err != nil || !ok {
				complete = false
				break
			}
			v.linked[i] = linkedBlob{res: res, from: from}
		}
		if complete {
			return v, true
		}
	}
	return verbatimPush{}, false
}

// hasBlob tells whether the store holds desc's blob at its size.
func (d *Daemon) hasBlob(desc ocispec.Descriptor) bool {
	f, err := d.images.OpenBlob(desc.Digest)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	return err == nil && st.Size() == desc.Size
}

// compressedFor returns the gzip blob an uncompressed layer blob was
// pushed as before (zero when never).
func (d *Daemon) compressedFor(blob digest.Digest) ocispec.Descriptor {
	var desc ocispec.Descriptor
	d.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(pushCompressedBucket); b != nil {
			if v := b.Get([]byte(blob)); v != nil {
				json.Unmarshal(v, &desc)
			}
		}
		return nil
	})
	if desc.Digest.Validate() != nil || desc.Size <= 0 {
		return ocispec.Descriptor{}
	}
	return desc
}

// recordCompressed remembers that blob was pushed gzip-compressed as desc.
func (d *Daemon) recordCompressed(blob digest.Digest, desc ocispec.Descriptor) {
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(pushCompressedBucket)
		if err != nil {
			return err
		}
		v, err := json.Marshal(desc)
		if err != nil {
			return err
		}
		return b.Put([]byte(blob), v)
	})
	if err != nil {
		// Only a hint: the next push compresses again.
		slog.Warn("push: remembering a compressed layer", "blob", blob, "err", err)
	}
}

// DistributionInspect serves GET /distribution/{name}/json: what name
// resolves to on its registry and the platforms it offers, without
// pulling. auth is X-Registry-Auth.
func (d *Daemon) DistributionInspect(ctx context.Context, name, auth string) (*registry.DistributionInspect, error) {
	creds, err := registryCredentials(auth)
	if err != nil {
		return nil, err
	}
	named, err := regclient.ParseReference(name)
	if err != nil {
		return nil, err
	}
	desc, plats, err := d.registryClient(creds, 0).Inspect(ctx, named)
	if err != nil {
		return nil, err
	}
	return &registry.DistributionInspect{Descriptor: desc, Platforms: plats}, nil
}
