package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"berth/internal/archive"
	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of docker's own manifests, which OCI layouts may still hold.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	annotationContainerdName    = "io.containerd.image.name"
)

// Compiled on first use, not at start-up: every berth process (a runtime
// CLI, a container's init) runs every package's init.
var blobName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^blobs/sha256/([a-f0-9]{64})$`)
})

// archiveFile is one file of a loaded tarball: small metadata in memory,
// anything else already in the content store.
type archiveFile struct {
	data []byte
	blob digest.Digest
}

// pendingImage is an image read from a tarball, not yet recorded.
type pendingImage struct {
	raw    []byte // config bytes
	id     digest.Digest
	config ocispec.Image
	layers []pendingLayer
	tags   []string
	parent digest.Digest // for commits
}

type pendingLayer struct {
	diffID, chainID digest.Digest
	blob            digest.Digest
	mediaType       string // empty: detect from the blob
}

// loader carries one Load: what it wrote and leased, so that a failure
// leaves the store as it was.
type loader struct {
	s     *Store
	files map[string]*archiveFile
	links map[string]string
	ops   *operation
}

// Load reads a docker-archive (manifest.json) or an OCI image layout
// (index.json) tarball, plain or compressed, and records its images and
// tags. out receives "Loaded image: name:tag" or "Loaded image ID:
// sha256:..." for each; the same strings are returned. On any error
// (corrupt, truncated or malicious input, digest mismatch) nothing new is
// visible and nothing is left behind.
func (s *Store) Load(ctx context.Context, r io.Reader, out func(msg string)) ([]string, error) {
	l := &loader{s: s, files: map[string]*archiveFile{}, links: map[string]string{}, ops: s.newOperation()}
	defer l.ops.finish()
	if err := l.read(ctx, r); err != nil {
		return nil, err
	}
	var pend []*pendingImage
	var err error
	if _, ok := l.files["manifest.json"]; ok {
		pend, err = l.planDocker()
	} else if _, ok := l.files["index.json"]; ok {
		pend, err = l.planOCI()
	} else {
		err = errdefs.InvalidParameter(errors.New("invalid image archive: neither manifest.json nor index.json found"))
	}
	if err != nil {
		return nil, err
	}
	if len(pend) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("invalid image archive: no images in it"))
	}
	for _, p := range pend {
		if err := l.ops.unpackLayers(ctx, p.layers); err != nil {
			return nil, err
		}
	}
	msgs, err := l.ops.commit(pend)
	if err != nil {
		return nil, err
	}
	if out != nil {
		for _, m := range msgs {
			out(m)
		}
	}
	var names []string
	for _, m := range msgs {
		if n, ok := strings.CutPrefix(m, "Loaded image: "); ok {
			names = append(names, n)
		} else if n, ok := strings.CutPrefix(m, "Loaded image ID: "); ok {
			names = append(names, n)
		}
	}
	return names, nil
}

func cleanArchiveName(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if strings.HasPrefix(name, "/") || c == ".." || strings.HasPrefix(c, "../") || strings.IndexByte(name, 0) >= 0 {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid image archive: entry %q leaves the archive", name))
	}
	return c, nil
}

func isMetadataFile(name string) bool {
	switch name {
	case "manifest.json", "index.json", "oci-layout", "repositories":
		return true
	}
	if strings.HasPrefix(name, "blobs/") {
		return false
	}
	base := path.Base(name)
	return strings.HasSuffix(base, ".json") || base == "json" || base == "VERSION"
}

// read takes in the whole tarball: the tar may list manifest.json last, so
// layers are stored (as the blobs they remain) before anything is unpacked.
func (l *loader) read(ctx context.Context, r io.Reader) error {
	rc, _, err := archive.Decompress(r)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: %w", err))
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: %w", err))
		}
		name, err := cleanArchiveName(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			t, err := cleanArchiveName(path.Join(path.Dir(name), hdr.Linkname))
			if err != nil || strings.HasPrefix(hdr.Linkname, "/") {
				return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: symlink %q points outside", hdr.Name))
			}
			l.links[name] = t
		case tar.TypeLink:
			t, err := cleanArchiveName(hdr.Linkname)
			if err != nil {
				return err
			}
			l.links[name] = t
		case tar.TypeReg, tar.TypeRegA:
			if isMetadataFile(name) {
				if hdr.Size > maxConfigSize {
					return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: %s is %d bytes, more than %d", name, hdr.Size, maxConfigSize))
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: reading %s: %w", name, err))
				}
				l.files[name] = &archiveFile{data: data}
				continue
			}
			var expected digest.Digest
			if m := blobName().FindStringSubmatch(name); m != nil {
				expected = digest.NewDigestFromEncoded(digest.SHA256, m[1])
			}
			d, err := l.ops.writeBlob(tr, expected)
			if err != nil {
				return fmt.Errorf("invalid image archive: %s: %w", name, err)
			}
			l.files[name] = &archiveFile{blob: d}
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: unexpected entry %q of type %q", hdr.Name, hdr.Typeflag))
		}
	}
	return nil
}

func (l *loader) lookup(name string) (*archiveFile, error) {
	n, err := cleanArchiveName(name)
	if err != nil {
		return nil, err
	}
	for range 16 {
		if f, ok := l.files[n]; ok {
			return f, nil
		}
		t, ok := l.links[n]
		if !ok {
			break
		}
		n = t
	}
	return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: %s is missing", name))
}

func (l *loader) bytesOf(name string) ([]byte, error) {
	f, err := l.lookup(name)
	if err != nil {
		return nil, err
	}
	if f.data != nil {
		return f.data, nil
	}
	return l.s.content.ReadAll(f.blob, maxConfigSize)
}

func (l *loader) blobOf(name string) (digest.Digest, error) {
	f, err := l.lookup(name)
	if err != nil {
		return "", err
	}
	if f.blob == "" {
		d, err := l.ops.writeBlob(strings.NewReader(string(f.data)), "")
		if err != nil {
			return "", err
		}
		f.blob = d
	}
	return f.blob, nil
}

// docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (l *loader) planDocker() ([]*pendingImage, error) {
	raw, _ := l.bytesOf("manifest.json")
	var entries []dockerManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: manifest.json: %w", err))
	}
	var out []*pendingImage
	for _, e := range entries {
		cfgRaw, err := l.bytesOf(e.Config)
		if err != nil {
			return nil, err
		}
		p, err := parseConfig(cfgRaw)
		if err != nil {
			return nil, err
		}
		if len(e.Layers) != len(p.config.RootFS.DiffIDs) {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: image %s lists %d layers but its config %d", p.id, len(e.Layers), len(p.config.RootFS.DiffIDs)))
		}
		for i, name := range e.Layers {
			if p.layers[i].blob, err = l.blobOf(name); err != nil {
				return nil, err
			}
		}
		for _, t := range e.RepoTags {
			key, err := normalizeTag(t)
			if err != nil {
				return nil, err
			}
			p.tags = append(p.tags, key)
		}
		out = mergePending(out, p)
	}
	return out, nil
}

func normalizeTag(t string) (string, error) {
	named, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid image archive: bad tag %q: %w", t, err))
	}
	if _, ok := named.(reference.Digested); ok {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid image archive: tag %q has a digest", t))
	}
	return reference.FamiliarString(reference.TagNameOnly(named)), nil
}

// mergePending adds p, folding it into an earlier entry of the same image.
func mergePending(list []*pendingImage, p *pendingImage) []*pendingImage {
	for _, q := range list {
		if q.id == p.id {
			q.tags = append(q.tags, p.tags...)
			return list
		}
	}
	return append(list, p)
}

// parseConfig checks an image config and computes its layers' chain IDs.
func parseConfig(raw []byte) (*pendingImage, error) {
	p := &pendingImage{raw: raw, id: digest.FromBytes(raw)}
	if err := json.Unmarshal(raw, &p.config); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image config %s: %w", p.id, err))
	}
	if p.config.RootFS.Type != "layers" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image config %s: rootfs type %q", p.id, p.config.RootFS.Type))
	}
	var chain digest.Digest
	for _, d := range p.config.RootFS.DiffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image config %s: bad diff ID %q", p.id, d))
		}
		chain = chainID(chain, d)
		p.layers = append(p.layers, pendingLayer{diffID: d, chainID: chain})
	}
	return p, nil
}

// chainID is the OCI chain ID of a layer on top of parent.
func chainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

func (l *loader) planOCI() ([]*pendingImage, error) {
	raw, _ := l.bytesOf("index.json")
	var out []*pendingImage
	if err := l.walkIndex(raw, "", 0, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func descriptorName(d ocispec.Descriptor) string {
	if n := d.Annotations[annotationContainerdName]; n != "" {
		return n
	}
	// A bare ref.name is only a tag ("latest"): without a repository it
	// names nothing we can tag.
	if n := d.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(n, ":/@") {
		return n
	}
	return ""
}

func platformMatches(p *ocispec.Platform) bool {
	if p == nil {
		return true
	}
	return p.OS == "linux" && p.Architecture == runtime.GOARCH
}

func (l *loader) walkIndex(raw []byte, name string, depth int, out *[]*pendingImage) error {
	if depth > 4 {
		return errdefs.InvalidParameter(errors.New("invalid image archive: indexes nested too deep"))
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid image archive: index: %w", err))
	}
	found := false
	for _, d := range idx.Manifests {
		n := name
		if dn := descriptorName(d); dn != "" {
			n = dn
		}
		if depth > 0 && !platformMatches(d.Platform) {
			continue
		}
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
			b, err := l.descriptorBytes(d)
			if err != nil {
				return err
			}
			if err := l.walkIndex(b, n, depth+1, out); err != nil {
				return err
			}
			found = true
		case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
			p, err := l.planManifest(d, n)
			if err != nil {
				return err
			}
			*out = mergePending(*out, p)
			found = true
		}
	}
	if !found && depth > 0 {
		return errdefs.NotFound(fmt.Errorf("image %s has no manifest for linux/%s", name, runtime.GOARCH))
	}
	return nil
}

func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid image archive: bad digest %q", d))
	}
	return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded(), nil
}

func (l *loader) descriptorBytes(d ocispec.Descriptor) ([]byte, error) {
	p, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	b, err := l.bytesOf(p)
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d.Digest {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: digest mismatch for %s", d.Digest))
	}
	return b, nil
}

func (l *loader) planManifest(d ocispec.Descriptor, name string) (*pendingImage, error) {
	raw, err := l.descriptorBytes(d)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: manifest %s: %w", d.Digest, err))
	}
	cfgRaw, err := l.descriptorBytes(m.Config)
	if err != nil {
		return nil, err
	}
	p, err := parseConfig(cfgRaw)
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(p.layers) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: manifest %s lists %d layers but its config %d", d.Digest, len(m.Layers), len(p.layers)))
	}
	for i, ld := range m.Layers {
		bp, err := blobPath(ld.Digest)
		if err != nil {
			return nil, err
		}
		b, err := l.blobOf(bp)
		if err != nil {
			return nil, err
		}
		if b != ld.Digest {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image archive: digest mismatch for layer %s", ld.Digest))
		}
		p.layers[i].blob = b
		p.layers[i].mediaType = layerMediaType(ld.MediaType)
	}
	if name != "" {
		t, err := normalizeTag(name)
		if err != nil {
			return nil, err
		}
		p.tags = append(p.tags, t)
	}
	return p, nil
}

// layerMediaType keeps the OCI layer types as they are and maps docker's
// to OCI's; anything else is detected from the bytes.
func layerMediaType(mt string) string {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd:
		return mt
	case mediaTypeDockerLayer:
		return ocispec.MediaTypeImageLayerGzip
	}
	return ""
}
