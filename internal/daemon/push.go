package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/image"
	regclient "berth/internal/registry/client"
)

// pushConcurrency is how many layers are uploaded at once, as docker's
// max-concurrent-uploads default (5) scaled down for small machines.
const pushConcurrency = 3

// ImagePush serves POST /images/{name}/push?tag=: the tagged image, or
// every tag of the repository when no tag is given, goes to its registry.
// A missing image is an in-stream error after the first line, as docker's.
func (d *Daemon) ImagePush(ctx context.Context, name, tag, auth string, out api.Progress) error {
	creds, err := registryCredentials(auth)
	if err != nil {
		return err
	}
	repo, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format %q: %w", name, err))
	}
	if t, ok := repo.(reference.Tagged); ok && tag == "" {
		tag = t.Tag()
	}
	repo = reference.TrimNamed(repo)
	familiar := reference.FamiliarName(repo)

	// docker announces the repository before it looks for the image, so
	// a missing tag is an in-stream error.
	if err := out.WriteMessage(api.JSONMessage{Status: "The push refers to repository [" + repo.Name() + "]"}); err != nil {
		return err
	}
	var tags []string
	if tag != "" {
		if _, err := d.images.Resolve(familiar + ":" + tag); err != nil {
			return errdefs.NotFound(fmt.Errorf("tag does not exist: %s:%s", familiar, tag))
		}
		tags = []string{tag}
	} else {
		imgs, err := d.images.List()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, rt := range img.RepoTags {
				r, err := reference.ParseNormalizedNamed(rt)
				if t, ok := r.(reference.Tagged); err == nil && ok && reference.FamiliarName(r) == familiar {
					tags = append(tags, t.Tag())
				}
			}
		}
		sort.Strings(tags)
		if len(tags) == 0 {
			return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", familiar))
		}
	}

	c := d.registryClient(creds, 0)
	for _, t := range tags {
		named, err := reference.WithTag(repo, t)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		if err := d.pushOne(ctx, c, named, out); err != nil {
			return err
		}
	}
	return nil
}

// pushOne pushes one tag: its layers (three at a time), its config, then
// the manifest. An image pulled from a registry goes with the manifest it
// was pulled by, byte for byte, so its digest does not change, when every
// blob it lists is stored as pulled or already in the target registry;
// any other goes with the manifest the
// store builds (the same bytes every time, so the digest is stable and a
// pull gives back the same image ID), its uncompressed layers gzipped on
// the way as docker does.
func (d *Daemon) pushOne(ctx context.Context, c *regclient.Client, named reference.NamedTagged, out api.Progress) error {
	familiar := reference.FamiliarString(named)
	img, err := d.images.Resolve(familiar)
	if err != nil {
		return err
	}
	mountFrom := mountCandidates(img, named)
	rep := &pullReporter{out: out}
	var (
		m         ocispec.Manifest
		mediaType string
		raw       []byte
	)
	v, verbatim := d.pulledManifestFor(ctx, c, named, img.ID, mountFrom)
	if verbatim {
		m, mediaType, raw = v.m, v.mediaType, v.raw
	} else if m, _, err = d.images.Manifest(img.ID); err != nil {
		return err
	}

	// Docker lists layers top first, by diff ID.
	ids := make([]string, len(m.Layers))
	for i := range m.Layers {
		ids[i] = layerID(m.Layers[i].Digest)
		if i < len(img.Layers) {
			ids[i] = layerID(img.Layers[i].DiffID)
		}
	}
	for i := len(m.Layers) - 1; i >= 0; i-- {
		rep.send(ids[i], "Preparing", nil)
	}
	pushed := make([]ocispec.Descriptor, len(m.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushConcurrency)
	for i := len(m.Layers) - 1; i >= 0; i-- {
		desc, id := m.Layers[i], ids[i]
		g.Go(func() error {
			var err error
			if l, ok := v.linked[i]; ok {
				pushed[i] = desc
				reportPushed(rep, id, l.res, l.from)
				return nil
			}
			if !verbatim && uncompressedLayer(desc.MediaType) {
				pushed[i], err = d.pushCompressed(gctx, c, named, desc, id, mountFrom, rep)
				return err
			}
			pushed[i] = desc
			return d.pushLayer(gctx, c, named, desc, id, mountFrom, rep)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if _, err := d.pushBlob(ctx, c, named, m.Config, regclient.UploadOptions{MountFrom: mountFrom}); err != nil {
		return err
	}
	if !verbatim {
		m.Layers = pushed
		if raw, err = json.Marshal(m); err != nil {
			return err
		}
		mediaType = m.MediaType
	}
	dgst, err := c.PushManifest(ctx, named, mediaType, raw)
	if err != nil {
		return err
	}
	if err := d.images.SetRepoDigest(img.ID, reference.FamiliarName(named)+"@"+dgst.String()); err != nil {
		return err
	}
	if err := out.WriteMessage(api.JSONMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", named.Tag(), dgst, len(raw))}); err != nil {
		return err
	}
	if err := out.WriteMessage(api.JSONMessage{ProgressDetail: &api.ProgressDetail{},
		Aux: pushAux{Tag: named.Tag(), Digest: dgst.String(), Size: len(raw)}}); err != nil {
		return err
	}
	d.emitImage(familiar, familiar, events.ActionPush)
	return nil
}

// layerProgress reports "Pushing" for a layer of size bytes at most every
// 100ms, and at the end.
func layerProgress(rep *pullReporter, id string, size int64) func(sent int64) {
	var last time.Time
	var mu sync.Mutex
	return func(sent int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 100*time.Millisecond && sent < size {
			return
		}
		last = time.Now()
		rep.send(id, "Pushing", &api.ProgressDetail{Current: sent, Total: size})
	}
}

// reportPushed ends a layer's progress as docker words it.
func reportPushed(rep *pullReporter, id string, res regclient.BlobPush, from reference.Named) {
	switch {
	case res == regclient.BlobExists:
		rep.send(id, "Layer already exists", nil)
	case res == regclient.BlobMounted && from != nil:
		rep.send(id, "Mounted from "+reference.Path(from), nil)
	default:
		rep.send(id, "Pushed", nil)
	}
}

// pushLayer uploads one layer as stored, reporting docker's per-layer
// statuses.
func (d *Daemon) pushLayer(ctx context.Context, c *regclient.Client, named reference.Named, desc ocispec.Descriptor, id string, mountFrom []reference.Named, rep *pullReporter) error {
	var from reference.Named
	res, err := d.pushBlob(ctx, c, named, desc, regclient.UploadOptions{
		MountFrom:   mountFrom,
		Progress:    layerProgress(rep, id, desc.Size),
		MountedFrom: func(r reference.Named) { from = r },
	})
	if err != nil {
		return err
	}
	reportPushed(rep, id, res, from)
	return nil
}

// pushAux is the aux message ending a tag's push (docker's PushResult).
type pushAux struct {
	Tag    string
	Digest string
	Size   int
}

// pushBlob streams one stored blob to the registry from its file, never
// holding it in memory.
func (d *Daemon) pushBlob(ctx context.Context, c *regclient.Client, named reference.Named, desc ocispec.Descriptor, opts regclient.UploadOptions) (regclient.BlobPush, error) {
	f, err := d.images.OpenBlob(desc.Digest)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	res, err := c.UploadBlob(ctx, named, desc, f, opts)
	if err != nil {
		return 0, unclassified{err}
	}
	return res, nil
}

// mountCandidates are the other repositories of named's registry the
// image is known in (by tag or by a digest recorded at pull or push):
// their blobs can be mounted instead of uploaded.
func mountCandidates(img *image.Image, named reference.Named) []reference.Named {
	seen := map[string]bool{reference.Path(named): true}
	var out []reference.Named
	for _, ref := range append(append([]string(nil), img.RepoDigests...), img.RepoTags...) {
		r, err := reference.ParseNormalizedNamed(ref)
		if err != nil || reference.Domain(r) != reference.Domain(named) || seen[reference.Path(r)] {
			continue
		}
		seen[reference.Path(r)] = true
		out = append(out, reference.TrimNamed(r))
	}
	return out
}

// RegistryLogin serves POST /auth: it checks the credentials against the
// registry (GET /v2/ through its basic or token challenge). A refusal is
// a 500 with docker's wording, as the contract observed.
func (d *Daemon) RegistryLogin(ctx context.Context, auth registry.AuthConfig) (registry.AuthResponse, error) {
	creds := regclient.Credentials{Username: auth.Username, Password: auth.Password, RegistryToken: auth.RegistryToken,
		IdentityToken: auth.IdentityToken}
	c := d.registryClient(creds, 2)
	idt, err := c.Login(ctx, auth.ServerAddress)
	if err != nil {
		return registry.AuthResponse{}, unclassified{err}
	}
	return registry.AuthResponse{Status: "Login Succeeded", IdentityToken: idt}, nil
}
