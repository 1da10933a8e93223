package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types, which registries still serve most.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// manifestAccept is what a pull accepts, images and indexes of both kinds.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifest,
	ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifestList,
}, ", ")

// maxManifestSize bounds manifests and configs read into memory.
const maxManifestSize = 8 << 20

func repoScope(named reference.Named, actions string) string {
	return "repository:" + reference.Path(named) + ":" + actions
}

func (c *Client) newRequest(named reference.Named, method, path, actions string) *request {
	return c.newRequestAt(endpointHost(named), named, method, path, actions)
}

// newRequestAt is newRequest sent to host, a mirror of named's registry.
func (c *Client) newRequestAt(host string, named reference.Named, method, path, actions string) *request {
	return &request{
		method: method,
		host:   host,
		domain: reference.Domain(named),
		path:   "/v2/" + reference.Path(named) + path,
		scope:  repoScope(named, actions),
		header: http.Header{},
	}
}

// notFoundManifest words a missing manifest as docker does:
// "manifest for R:T not found: manifest unknown: manifest unknown".
func notFoundManifest(named reference.Named, err error) error {
	if errdefs.IsNotFound(err) {
		return errdefs.NotFound(fmt.Errorf("manifest for %s not found: %w", reference.FamiliarString(named), err))
	}
	return err
}

// Resolve asks the registry (HEAD) for the descriptor named's tag or
// digest points at: its digest, media type and size.
func (c *Client) Resolve(ctx context.Context, named reference.Named) (ocispec.Descriptor, error) {
	return tryHosts(ctx, c, named, "manifest", func(host string) (ocispec.Descriptor, error) {
		return c.resolveAt(ctx, host, named)
	})
}

func (c *Client) resolveAt(ctx context.Context, host string, named reference.Named) (ocispec.Descriptor, error) {
	r := c.newRequestAt(host, named, http.MethodHead, "/manifests/"+manifestRef(named), "pull")
	r.header.Set("Accept", manifestAccept)
	resp, err := c.do(ctx, r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, notFoundManifest(named, urlError("HEAD", resp.Request.URL.String(), responseError(resp)))
	}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		// Not every registry sends it on HEAD: fetch and hash instead.
		desc, _, err := c.fetchManifestAt(ctx, host, named, manifestRef(named))
		return desc, err
	}
	return ocispec.Descriptor{MediaType: mediaTypeOf(resp.Header.Get("Content-Type")), Digest: d, Size: resp.ContentLength}, nil
}

func mediaTypeOf(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// FetchManifest gets the manifest or index that ref (a tag or a digest)
// names in named's repository. A manifest fetched by digest is verified.
func (c *Client) FetchManifest(ctx context.Context, named reference.Named, ref string) (ocispec.Descriptor, []byte, error) {
	type answer struct {
		desc ocispec.Descriptor
		raw  []byte
	}
	a, err := tryHosts(ctx, c, named, "manifest", func(host string) (answer, error) {
		desc, raw, err := c.fetchManifestAt(ctx, host, named, ref)
		return answer{desc, raw}, err
	})
	return a.desc, a.raw, err
}

func (c *Client) fetchManifestAt(ctx context.Context, host string, named reference.Named, ref string) (ocispec.Descriptor, []byte, error) {
	r := c.newRequestAt(host, named, http.MethodGet, "/manifests/"+ref, "pull")
	r.header.Set("Accept", manifestAccept)
	resp, err := c.do(ctx, r)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, notFoundManifest(named, responseError(resp))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, errdefs.Unavailable(fmt.Errorf("read manifest %s of %s: %w", ref, reference.FamiliarName(named), err))
	}
	if len(raw) > maxManifestSize {
		return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(fmt.Errorf("manifest %s of %s is larger than %d bytes", ref, reference.FamiliarName(named), maxManifestSize))
	}
	d := digest.FromBytes(raw)
	if want, err := digest.Parse(ref); err == nil && want != d {
		return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(fmt.Errorf("manifest %s of %s: digest mismatch, got %s", ref, reference.FamiliarName(named), d))
	}
	mt := mediaTypeOf(resp.Header.Get("Content-Type"))
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ocispec.Descriptor{}, nil, errdefs.InvalidParameter(fmt.Errorf("manifest %s of %s: %w", ref, reference.FamiliarName(named), err))
	}
	if probe.MediaType != "" {
		mt = probe.MediaType
	} else if !isKnownManifest(mt) {
		// Some registries answer application/json: tell by the fields.
		mt = ocispec.MediaTypeImageManifest
		if probe.Manifests != nil {
			mt = ocispec.MediaTypeImageIndex
		}
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, raw, nil
}

func isKnownManifest(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return true
	}
	return false
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// Image is a resolved image: the manifest for the platform and its config.
type Image struct {
	// Digest is what the reference resolved to (the index, for a
	// multi-platform image): docker prints it as "Digest: sha256:...".
	Digest         digest.Digest
	Manifest       ocispec.Manifest
	ManifestDigest digest.Digest
	// ManifestRaw and ManifestMediaType are the manifest's bytes and type
	// as the registry served them: pushing them back unchanged keeps its
	// digest.
	ManifestRaw       []byte
	ManifestMediaType string
	Config            []byte
}

// ResolveImage fetches named's manifest, choosing platform's entry when it
// is an index, and the image config. A platform with an empty OS or
// architecture matches any.
func (c *Client) ResolveImage(ctx context.Context, named reference.Named, platform ocispec.Platform) (*Image, error) {
	desc, raw, err := c.FetchManifest(ctx, named, manifestRef(named))
	if err != nil {
		return nil, err
	}
	img := &Image{Digest: desc.Digest}
	for depth := 0; isIndex(desc.MediaType); depth++ {
		if depth > 2 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("%s: indexes nested too deep", reference.FamiliarString(named)))
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("index %s of %s: %w", desc.Digest, reference.FamiliarName(named), err))
		}
		pick, ok := SelectPlatform(idx.Manifests, platform)
		if !ok {
			return nil, errdefs.NotFound(fmt.Errorf("no matching manifest for %s in the manifest list entries", platformString(platform)))
		}
		if desc, raw, err = c.FetchManifest(ctx, named, pick.Digest.String()); err != nil {
			return nil, err
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest %s of %s: %w", desc.Digest, reference.FamiliarName(named), err))
	}
	if m.Config.Digest == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest %s of %s has no config (schema 1 manifests are not supported)", desc.Digest, reference.FamiliarName(named)))
	}
	img.Manifest, img.ManifestDigest = m, desc.Digest
	img.ManifestRaw, img.ManifestMediaType = raw, desc.MediaType
	if m.Config.Size > maxManifestSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("config %s of %s is larger than %d bytes", m.Config.Digest, reference.FamiliarName(named), maxManifestSize))
	}
	rc, err := c.FetchBlob(ctx, named, m.Config)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cfg, err := io.ReadAll(io.LimitReader(rc, m.Config.Size+1))
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(cfg); got != m.Config.Digest {
		return nil, errdefs.InvalidParameter(fmt.Errorf("config %s of %s: digest mismatch, got %s", m.Config.Digest, reference.FamiliarName(named), got))
	}
	img.Config = cfg
	return img, nil
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// SelectPlatform picks the best entry of an index for p: OS and
// architecture must match (when set); the entry whose variant is p's
// (with the architecture's default filled in: amd64 v1, arm64 v8, arm v7)
// wins, and among other variants the lowest, the one the most machines
// run (an amd64/v3 build dies with SIGILL on a v2 CPU). Attestation
// manifests (platform unknown/unknown) never match.
func SelectPlatform(ms []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, bool) {
	best, bestScore, bestVariant := ocispec.Descriptor{}, -1, ""
	want := normalVariant(p.Architecture, p.Variant)
	for _, d := range ms {
		dp := d.Platform
		if dp == nil {
			dp = &ocispec.Platform{}
		}
		if dp.OS == "unknown" || dp.Architecture == "unknown" {
			continue
		}
		if p.OS != "" && dp.OS != "" && dp.OS != p.OS {
			continue
		}
		if p.Architecture != "" && dp.Architecture != "" && dp.Architecture != p.Architecture {
			continue
		}
		score := 0
		if dp.OS == p.OS {
			score += 2
		}
		if dp.Architecture == p.Architecture {
			score += 2
		}
		v := normalVariant(dp.Architecture, dp.Variant)
		if v == want {
			score++
		}
		if score > bestScore || score == bestScore && variantLess(v, bestVariant) {
			best, bestScore, bestVariant = d, score, v
		}
	}
	return best, bestScore >= 0
}

// normalVariant fills in the variant an architecture implies when none is
// given, as containerd's platform matcher does.
func normalVariant(arch, variant string) string {
	if variant != "" {
		return variant
	}
	switch arch {
	case "amd64":
		return "v1"
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// variantLess orders "v2" before "v10"; any variant before none.
func variantLess(a, b string) bool {
	na, errA := strconv.Atoi(strings.TrimPrefix(a, "v"))
	nb, errB := strconv.Atoi(strings.TrimPrefix(b, "v"))
	if errA == nil && errB == nil {
		return na < nb
	}
	return a != "" && b == ""
}

// Tags lists the tags of named's repository (GET /v2/<name>/tags/list,
// following the Link header of paginated answers).
func (c *Client) Tags(ctx context.Context, named reference.Named) ([]string, error) {
	var all []string
	r := c.newRequest(named, http.MethodGet, "/tags/list", "pull")
	for page := 0; page < 1000; page++ {
		resp, err := c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			err := responseError(resp)
			if errdefs.IsNotFound(err) {
				return nil, errdefs.NotFound(fmt.Errorf("repository %s not found: %w", reference.FamiliarName(named), err))
			}
			return nil, fmt.Errorf("list tags of %s: %w", reference.FamiliarName(named), err)
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&body)
		link := resp.Header.Get("Link")
		base := resp.Request.URL
		drain(resp)
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", reference.FamiliarName(named), err)
		}
		all = append(all, body.Tags...)
		// Link: </v2/name/tags/list?n=100&last=x>; rel="next"
		target, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(link), "<"), ">")
		if !ok || target == "" {
			return all, nil
		}
		next, err := base.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: bad Link %q: %w", reference.FamiliarName(named), link, err)
		}
		r = c.newRequest(named, http.MethodGet, "", "pull")
		r.path = next.String()
	}
	return all, nil
}
