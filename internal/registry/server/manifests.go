package server

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's schema2 media types, served as pushed alongside the OCI ones.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// maxManifestSize is the largest manifest accepted; the spec asks
// registries to take at least 4 MiB.
const maxManifestSize = 4 << 20

// isDigestRef tells a digest reference from a tag: tags cannot contain ':'.
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// manifestFields are the parts of any manifest (image, index, schema2,
// artifact) the registry looks at.
type manifestFields struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// getManifest serves GET and HEAD /v2/<name>/manifests/<reference>.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if isDigestRef(rt.ref) {
		if _, err := parseDigest(rt.ref); err != nil {
			return err
		}
	} else if !tagRe().MatchString(rt.ref) {
		return errTagInvalid(rt.ref)
	}
	d, rec, err := s.resolve(rt.name, rt.ref)
	if err != nil {
		return err
	}
	body, err := s.manifestBytes(d, rt.ref)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", rec.MediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
	return nil
}

// putManifest serves PUT /v2/<name>/manifests/<reference>: by tag (sha256
// digest) or by digest (its algorithm; extra tags with ?tag=).
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	var tags []string
	alg := digest.Canonical
	var want digest.Digest
	if isDigestRef(rt.ref) {
		d, err := parseDigest(rt.ref)
		if err != nil {
			return err
		}
		want, alg = d, d.Algorithm()
	} else {
		tags = append(tags, rt.ref)
	}
	// Tag parameters (distribution-spec 1.2) tag a push by digest; they
	// are the only way to tag a manifest whose digest is not sha256.
	paramTags := r.URL.Query()["tag"]
	tags = append(tags, paramTags...)
	for _, t := range tags {
		if !tagRe().MatchString(t) {
			return errTagInvalid(t)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return errManifestInvalid("read manifest: %v", err)
	}
	if len(body) > maxManifestSize {
		return newErr("SIZE_INVALID", http.StatusRequestEntityTooLarge, "manifest larger than %d bytes", maxManifestSize)
	}
	d := alg.FromBytes(body)
	if want != "" && d != want {
		return errDigestInvalid("manifest digest is %s, the reference says %s", d, want)
	}
	var m manifestFields
	if err := json.Unmarshal(body, &m); err != nil {
		return errManifestInvalid("manifest is not JSON: %v", err)
	}
	mediaType := contentType(r.Header.Get("Content-Type"))
	if m.MediaType != "" && mediaType != "" && m.MediaType != mediaType {
		return errManifestInvalid("manifest mediaType %q does not match Content-Type %q", m.MediaType, mediaType)
	}
	if mediaType == "" {
		mediaType = m.MediaType
	}
	if mediaType == "" {
		return errManifestInvalid("manifest has no media type (neither Content-Type nor mediaType)")
	}
	// Checking the blobs and storing the manifest is one step for GC.
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.checkReferences(rt.name, mediaType, &m); err != nil {
		return err
	}
	if err := s.blobs.writeBytes(body, d); err != nil {
		return err
	}
	rec := manifestRecord{MediaType: mediaType, Size: int64(len(body))}
	var referrer *ocispec.Descriptor
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return errManifestInvalid("invalid subject digest %q: %v", m.Subject.Digest, err)
		}
		rec.Subject = m.Subject.Digest
		at := m.ArtifactType
		if at == "" && m.Config != nil {
			at = m.Config.MediaType
		}
		referrer = &ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body)), ArtifactType: at, Annotations: m.Annotations}
	}
	if err := s.storeManifest(rt.name, d, rec, tags, referrer); err != nil {
		return err
	}
	s.manifests.add(d, body)
	h := w.Header()
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest.String())
	}
	for _, t := range paramTags {
		h.Add("OCI-Tag", t)
	}
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func contentType(v string) string {
	if v == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return v
	}
	return mt
}

// checkReferences makes sure an image's config and layers are in the
// repository, so a pull of what was pushed works. Non-distributable layers
// are exempt: they are fetched from elsewhere. An index's children are
// only checked for well-formed digests.
func (s *Server) checkReferences(name, mediaType string, m *manifestFields) error {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		if m.Config == nil {
			return errManifestInvalid("image manifest has no config")
		}
		if err := s.needBlob(name, *m.Config); err != nil {
			return err
		}
		for _, l := range m.Layers {
			if nonDistributable(l.MediaType) {
				continue
			}
			if err := s.needBlob(name, l); err != nil {
				return err
			}
		}
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		for _, c := range m.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return errManifestInvalid("invalid digest %q in index: %v", c.Digest, err)
			}
			// Children may be missing: a sparse index (a partial copy
			// of a multi-platform image) is valid.

		}
	}
	return nil
}

func nonDistributable(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.oci.image.layer.nondistributable.") ||
		mt == mediaTypeDockerForeignLayer
}

func (s *Server) needBlob(name string, desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return errManifestInvalid("invalid digest %q in manifest: %v", desc.Digest, err)
	}
	if !s.hasBlobLink(name, desc.Digest) {
		return errManifestBlobUnknown(desc.Digest.String())
	}
	return nil
}

// deleteManifest serves DELETE /v2/<name>/manifests/<reference>: a digest
// removes the manifest and its tags, a tag removes only the tag.
func (s *Server) deleteManifest(w http.ResponseWriter, rt route) error {
	var err error
	if isDigestRef(rt.ref) {
		d, perr := parseDigest(rt.ref)
		if perr != nil {
			return perr
		}
		err = s.removeManifest(rt.name, d)
	} else {
		if !tagRe().MatchString(rt.ref) {
			return errTagInvalid(rt.ref)
		}
		err = s.removeTag(rt.name, rt.ref)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// referrers serves GET /v2/<name>/referrers/<digest>[?artifactType=]: an
// image index of the manifests whose subject is the digest (empty, not 404,
// when there are none).
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	descs, err := s.referrersOf(rt.name, d)
	if err != nil {
		return err
	}
	h := w.Header()
	if at := r.URL.Query().Get("artifactType"); at != "" {
		kept := descs[:0]
		for _, desc := range descs {
			if desc.ArtifactType == at {
				kept = append(kept, desc)
			}
		}
		descs = kept
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("registry: encode referrers of %s: %w", d, err)
	}
	h.Set("Content-Type", ocispec.MediaTypeImageIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}
