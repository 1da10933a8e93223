package daemon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/image"
	regclient "berth/internal/registry/client"
)

// pullRef combines the API's fromImage and tag into one reference: the
// tag may be a tag or a digest, and is "latest" when neither is given.
func pullRef(from, tag string) (reference.Named, error) {
	s := from
	if tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			s += "@" + tag
		} else {
			s += ":" + tag
		}
	}
	return regclient.ParseReference(s)
}

// parsePlatform reads "os/arch[/variant]"; empty is the host's.
func parsePlatform(s string) (ocispec.Platform, error) {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if s == "" {
		return p, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return p, errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: want os/arch[/variant]", s))
	}
	p.OS = parts[0]
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// registryCredentials decodes X-Registry-Auth (base64url JSON of an
// AuthConfig; "e30=" is "{}", anonymous).
func registryCredentials(header string) (regclient.Credentials, error) {
	if header == "" {
		return regclient.Credentials{}, nil
	}
	raw, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(header); err != nil {
			if raw, err = base64.RawURLEncoding.DecodeString(header); err != nil {
				return regclient.Credentials{}, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
			}
		}
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return regclient.Credentials{}, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
	}
	c := regclient.Credentials{Username: ac.Username, Password: ac.Password, RegistryToken: ac.RegistryToken,
		IdentityToken: ac.IdentityToken}
	if c.Username == "" && ac.Auth != "" {
		// "auth" is base64("user:password"), as in config.json.
		if b, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			c.Username, c.Password, _ = strings.Cut(string(b), ":")
		}
	}
	return c, nil
}

// pull is ImagePull: resolve, then stream every missing layer into the
// store while reporting docker's progress messages. Errors before the
// first message (a missing manifest, an unreachable registry) are
// returned for a plain error response. Without a tag in either argument
// (`pull -a`) every tag of the repository is pulled.
func (d *Daemon) pull(ctx context.Context, from, tag, platform, auth string, out api.Progress) error {
	plat, err := parsePlatform(platform)
	if err != nil {
		return err
	}
	creds, err := registryCredentials(auth)
	if err != nil {
		return err
	}
	c := d.registryClient(creds, 0)
	if tag == "" {
		if n, err := reference.ParseNormalizedNamed(from); err == nil && reference.IsNameOnly(n) {
			return d.pullAllTags(ctx, c, n, plat, out)
		}
	}
	named, err := pullRef(from, tag)
	if err != nil {
		return err
	}
	newer, err := d.pullOne(ctx, c, named, plat, out)
	if err != nil {
		return err
	}
	familiar := reference.FamiliarString(named)
	if !newer {
		return out.WriteMessage(api.JSONMessage{Status: "Status: Image is up to date for " + familiar})
	}
	return out.WriteMessage(api.JSONMessage{Status: "Status: Downloaded newer image for " + familiar})
}

// pullAllTags is `pull -a`: every tag the registry lists, in its order.
func (d *Daemon) pullAllTags(ctx context.Context, c *regclient.Client, repo reference.Named, plat ocispec.Platform, out api.Progress) error {
	tags, err := c.Tags(ctx, repo)
	if err != nil {
		if errdefs.IsNotFound(err) || errdefs.IsInvalidParameter(err) {
			return err
		}
		return unclassified{err}
	}
	newer := false
	for _, t := range tags {
		named, err := reference.WithTag(repo, t)
		if err != nil {
			continue // not a valid tag: nothing docker could name either
		}
		n, err := d.pullOne(ctx, c, named, plat, out)
		if err != nil {
			return err
		}
		newer = newer || n
	}
	familiar := reference.FamiliarName(repo)
	if !newer {
		return out.WriteMessage(api.JSONMessage{Status: "Status: Image is up to date for " + familiar})
	}
	return out.WriteMessage(api.JSONMessage{Status: "Status: Downloaded newer image for " + familiar})
}

// pullOne pulls one tag or digest; it reports whether anything changed.
func (d *Daemon) pullOne(ctx context.Context, c *regclient.Client, named reference.Named, plat ocispec.Platform, out api.Progress) (bool, error) {
	img, err := c.ResolveImage(ctx, named, plat)
	if err != nil {
		// docker answers 404 for a missing manifest and 500 for the rest
		// (unreachable registry, missing credentials).
		if errdefs.IsNotFound(err) || errdefs.IsInvalidParameter(err) {
			return false, err
		}
		return false, unclassified{err}
	}

	familiar := reference.FamiliarString(named)
	if err := out.WriteMessage(api.JSONMessage{Status: "Pulling from " + reference.Path(named), ID: manifestTag(named)}); err != nil {
		return false, err
	}
	refs := []string{reference.FamiliarName(named) + "@" + img.Digest.String()}
	upToDate := false
	if tagged, ok := named.(reference.Tagged); ok {
		ref := reference.FamiliarName(named) + ":" + tagged.Tag()
		refs = append(refs, ref)
		if cur, err := d.images.Resolve(ref); err == nil && cur.ID == digest.FromBytes(img.Config) {
			upToDate = true
		}
	} else if cur, err := d.images.Resolve(refs[0]); err == nil && cur.ID == digest.FromBytes(img.Config) {
		upToDate = true
	}

	rep := &pullReporter{out: out}
	p := image.Pulled{Config: img.Config, Refs: refs}
	for _, l := range img.Manifest.Layers {
		desc := l
		lid := layerID(desc.Digest)
		p.Layers = append(p.Layers, image.PulledLayer{
			Blob: desc,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				rc, err := c.FetchBlob(ctx, named, desc)
				if err != nil {
					return nil, err
				}
				return &progressReader{rc: rc, rep: rep, id: lid, total: desc.Size}, nil
			},
		})
	}
	if !upToDate {
		p.Progress = func(i int, ev image.PullEvent) {
			lid := layerID(img.Manifest.Layers[i].Digest)
			switch ev {
			case image.LayerExists:
				rep.send(lid, "Already exists", nil)
			case image.LayerFetching:
				rep.send(lid, "Pulling fs layer", nil)
			case image.LayerUnpacked:
				rep.send(lid, "Pull complete", nil)
			}
		}
	}
	pulled, err := d.images.AddPulled(ctx, p)
	if err != nil {
		return false, err
	}
	if err := d.recordPulledManifest(pulled.ID, img.ManifestMediaType, img.ManifestRaw); err != nil {
		// Only costs the digest on a push back: the manifest is rebuilt.
		slog.Warn("pull: remembering the manifest", "image", pulled.ID, "err", err)
	}
	if err := out.WriteMessage(api.JSONMessage{Status: "Digest: " + img.Digest.String()}); err != nil {
		return false, err
	}
	d.emitImage(familiar, familiar, events.ActionPull)
	return !upToDate, nil
}

// unclassified hides an error's class, so that the API answers 500 as
// docker does for registry failures other than a missing manifest.
type unclassified struct{ err error }

func (u unclassified) Error() string { return u.err.Error() }

// manifestTag is the id of the "Pulling from" line: the tag or digest.
func manifestTag(named reference.Named) string {
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	if dg, ok := named.(reference.Digested); ok {
		return dg.Digest().String()
	}
	return "latest"
}

// layerID is the id of a layer's progress lines: its blob digest, short.
func layerID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// pullReporter writes layer progress; layers report from several
// goroutines, and api.Progress writers need not be safe for that.
type pullReporter struct {
	mu  sync.Mutex
	out api.Progress
}

func (r *pullReporter) send(id, status string, detail *api.ProgressDetail) {
	m := api.JSONMessage{Status: status, ID: id, ProgressDetail: detail}
	if detail == nil {
		m.ProgressDetail = &api.ProgressDetail{}
	} else if detail.Total > 0 {
		m.Progress = progressBar(detail.Current, detail.Total)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.WriteMessage(m)
}

// progressBar renders docker's cosmetic bar: "[====>    ]  1.2MB/3.4MB".
func progressBar(cur, total int64) string {
	const width = 50
	n := int(width * cur / max(total, 1))
	n = min(n, width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	} else {
		bar += ">"
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, units.HumanSize(float64(cur)), units.HumanSize(float64(total)))
}

// progressReader reports "Downloading" as a layer's bytes arrive (at most
// every 100ms), and the end of the download when they are all in.
type progressReader struct {
	rc    io.ReadCloser
	rep   *pullReporter
	id    string
	total int64
	cur   int64
	last  time.Time
	done  bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	p.cur += int64(n)
	if n > 0 && (time.Since(p.last) > 100*time.Millisecond || p.cur == p.total) {
		p.last = time.Now()
		p.rep.send(p.id, "Downloading", &api.ProgressDetail{Current: p.cur, Total: p.total})
	}
	if err == io.EOF && !p.done {
		p.done = true
		p.rep.send(p.id, "Verifying Checksum", nil)
		p.rep.send(p.id, "Download complete", nil)
		p.rep.send(p.id, "Extracting", &api.ProgressDetail{Current: p.total, Total: p.total})
	}
	return n, err
}

func (p *progressReader) Close() error { return p.rc.Close() }
