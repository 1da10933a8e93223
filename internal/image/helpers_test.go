package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"berth/internal/fixture"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(root, db)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// ent is one tar entry of a hand-made layer; the builders are the
// fixture's.
type ent = fixture.TarEntry

var (
	reg      = fixture.RegEntry
	dirEnt   = fixture.DirEntry
	symEnt   = fixture.SymlinkEntry
	linkEnt  = fixture.HardlinkEntry
	layerTar = fixture.Tar
)

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

// testImage describes an image to put into a hand-made archive.
type testImage struct {
	tags     []string
	layers   [][]byte // uncompressed layer tars, bottom first
	compress func([]byte) []byte
	cmd      string
	diffIDs  []digest.Digest // override (to fake a mismatch)
}

func (ti testImage) config() ([]byte, []digest.Digest) {
	var diffIDs []digest.Digest
	for _, l := range ti.layers {
		diffIDs = append(diffIDs, digest.FromBytes(l))
	}
	if ti.diffIDs != nil {
		diffIDs = ti.diffIDs
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:   ocispec.ImageConfig{Cmd: []string{ti.cmd}},
	}
	raw, _ := json.Marshal(cfg)
	return raw, diffIDs
}

func (ti testImage) blobs() [][]byte {
	var out [][]byte
	for _, l := range ti.layers {
		if ti.compress != nil {
			l = ti.compress(l)
		}
		out = append(out, l)
	}
	return out
}

type tarWriter struct {
	t  testing.TB
	tw *tar.Writer
}

func (w tarWriter) file(name string, data []byte) {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
		w.t.Fatal(err)
	}
	w.tw.Write(data)
}

// dockerArchive writes images as a legacy docker-archive: <n>/layer.tar,
// <config hex>.json and manifest.json, manifest last.
func dockerArchive(t testing.TB, images ...testImage) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tarWriter{t, tar.NewWriter(&buf)}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for i, ti := range images {
		raw, _ := ti.config()
		e := entry{Config: digest.FromBytes(raw).Encoded() + ".json", RepoTags: ti.tags}
		for j, b := range ti.blobs() {
			name := fmt.Sprintf("l%d-%d/layer.tar", i, j)
			w.file(name, b)
			e.Layers = append(e.Layers, name)
		}
		w.file(e.Config, raw)
		manifest = append(manifest, e)
	}
	mj, _ := json.Marshal(manifest)
	w.file("manifest.json", mj)
	w.tw.Close()
	return buf.Bytes()
}

// ociArchive writes one image as an OCI layout. nested puts the manifest
// behind an inner index beside a manifest for another platform whose blobs
// are absent (so choosing it would fail).
func ociArchive(t testing.TB, name string, nested bool, ti testImage) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tarWriter{t, tar.NewWriter(&buf)}
	raw, _ := ti.config()
	w.file("blobs/sha256/"+digest.FromBytes(raw).Encoded(), raw)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(raw), Size: int64(len(raw))}}
	for _, b := range ti.blobs() {
		mt := ocispec.MediaTypeImageLayer
		if ti.compress != nil {
			mt = ocispec.MediaTypeImageLayerGzip
		}
		w.file("blobs/sha256/"+digest.FromBytes(b).Encoded(), b)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))})
	}
	mraw, _ := json.Marshal(m)
	w.file("blobs/sha256/"+digest.FromBytes(mraw).Encoded(), mraw)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mraw), Size: int64(len(mraw))}
	if nested {
		desc.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
		other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 10,
			Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}}
		inner, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{other, desc}})
		w.file("blobs/sha256/"+digest.FromBytes(inner).Encoded(), inner)
		desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(inner), Size: int64(len(inner))}
	}
	if name != "" {
		desc.Annotations = map[string]string{annotationContainerdName: name, ocispec.AnnotationRefName: "ignored"}
	}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{desc}})
	w.file("index.json", idx)
	w.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	w.tw.Close()
	return buf.Bytes()
}

func busyboxArchive(t testing.TB, ref string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fixture.BusyboxImage(&buf, ref); err != nil {
		t.Skip(err)
	}
	return buf.Bytes()
}

func load(t *testing.T, s *Store, data []byte) []string {
	t.Helper()
	names, err := s.Load(context.Background(), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return names
}

// tree lists every path under the data root (but metadata.db) with its
// type and size: equal listings mean the store was left untouched.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "metadata.db" {
			return nil
		}
		info, _ := d.Info()
		size := int64(0)
		if info != nil && info.Mode().IsRegular() {
			size = info.Size()
		}
		lines = append(lines, fmt.Sprintf("%s %v %d", rel, d.Type(), size))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func imageIDs(t *testing.T, s *Store) string {
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, img := range imgs {
		ids = append(ids, img.ID.String()+strings.Join(img.RepoTags, ","))
	}
	sort.Strings(ids)
	return strings.Join(ids, " ")
}

// du is `du -s -B1` of the data root without metadata.db, by the real du.
func du(t *testing.T, root string) int64 {
	t.Helper()
	out, err := runCmd("du", "-s", "-B1", "--exclude=metadata.db", root)
	if err != nil {
		t.Fatalf("du: %v %s", err, out)
	}
	var n int64
	fmt.Sscan(out, &n)
	return n
}

func requireRoot(t *testing.T) { fixture.RequireRoot(t) }

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return names
		}
		names = append(names, h.Name)
	}
}

// newTarCopy copies the entries of data that keep accepts into w.
func newTarCopy(t *testing.T, w io.Writer, data []byte, keep func(string) bool) error {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !keep(h.Name) {
			continue
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	return tw.Close()
}

type rawTar struct{ tw *tar.Writer }

func newRawTar(w io.Writer) rawTar { return rawTar{tar.NewWriter(w)} }

// header writes only a header claiming size bytes; the body is the caller's.
func (r rawTar) header(name string, size int64) {
	r.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
	r.tw.Flush()
}

func blockDev(name string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8}
}
