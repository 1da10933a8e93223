package daemon

import (
	"context"
	"fmt"
	"runtime"
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

	c := regclient.New(regclient.Options{
		UserAgent:   "berth/" + runtime.Version(),
		Credentials: func(string) regclient.Credentials { return creds },
	})
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
// the manifest the store builds (the same bytes every time, so the digest
// is stable and a pull gives back the same image ID).
func (d *Daemon) pushOne(ctx context.Context, c *regclient.Client, named reference.NamedTagged, out api.Progress) error {
	familiar := reference.FamiliarString(named)
	img, err := d.images.Resolve(familiar)
	if err != nil {
		return err
	}
	m, raw, err := d.images.Manifest(img.ID)
	if err != nil {
		return err
	}
	mountFrom := mountCandidates(img, named)
	rep := &pullReporter{out: out}

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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushConcurrency)
	for i := len(m.Layers) - 1; i >= 0; i-- {
		desc, id := m.Layers[i], ids[i]
		g.Go(func() error {
			return d.pushLayer(gctx, c, named, desc, id, mountFrom, rep)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if _, err := d.pushBlob(ctx, c, named, m.Config, regclient.UploadOptions{MountFrom: mountFrom}); err != nil {
		return err
	}
	dgst, err := c.PushManifest(ctx, named, m.MediaType, raw)
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

// pushLayer uploads one layer, reporting docker's per-layer statuses.
func (d *Daemon) pushLayer(ctx context.Context, c *regclient.Client, named reference.Named, desc ocispec.Descriptor, id string, mountFrom []reference.Named, rep *pullReporter) error {
	var last time.Time
	var mu sync.Mutex
	progress := func(sent int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 100*time.Millisecond && sent < desc.Size {
			return
		}
		last = time.Now()
		rep.send(id, "Pushing", &api.ProgressDetail{Current: sent, Total: desc.Size})
	}
	var from reference.Named
	res, err := d.pushBlob(ctx, c, named, desc, regclient.UploadOptions{
		MountFrom:   mountFrom,
		Progress:    progress,
		MountedFrom: func(r reference.Named) { from = r },
	})
	if err != nil {
		return err
	}
	switch {
	case res == regclient.BlobExists:
		rep.send(id, "Layer already exists", nil)
	case res == regclient.BlobMounted && from != nil:
		rep.send(id, "Mounted from "+reference.Path(from), nil)
	default:
		rep.send(id, "Pushed", nil)
	}
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
	creds := regclient.Credentials{Username: auth.Username, Password: auth.Password, RegistryToken: auth.RegistryToken}
	if creds.Password == "" && auth.IdentityToken != "" {
		creds.Password = auth.IdentityToken
	}
	c := regclient.New(regclient.Options{
		UserAgent:   "berth/" + runtime.Version(),
		Credentials: func(string) regclient.Credentials { return creds },
		MaxAttempts: 2,
	})
	if err := c.Login(ctx, auth.ServerAddress); err != nil {
		return registry.AuthResponse{}, unclassified{err}
	}
	return registry.AuthResponse{Status: "Login Succeeded"}, nil
}
