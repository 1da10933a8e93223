package client

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/internal/errdefs"
	"berth/internal/image"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// fakeRegistry is an in-memory registry double on loopback that serves
// what a test put in it, unless hook answers a request first.
type fakeRegistry struct {
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[string][]byte // by tag and by digest
	hits      map[string]int    // "GET manifest", "GET blob" → count
	hook      func(w http.ResponseWriter, r *http.Request) bool
	host      string
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{blobs: map[digest.Digest][]byte{}, manifests: map[string][]byte{}, hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	kind := "other"
	switch {
	case strings.Contains(r.URL.Path, "/manifests/"):
		kind = "manifest"
	case strings.Contains(r.URL.Path, "/blobs/"):
		kind = "blob"
	}
	f.mu.Lock()
	f.hits[r.Method+" "+kind]++
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if r.URL.Path == "/v2/" {
		return
	}
	ref := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	f.mu.Lock()
	var body []byte
	var ok bool
	if kind == "manifest" {
		body, ok = f.manifests[ref]
		w.Header().Set("Content-Type", MediaTypeDockerManifest)
	} else if kind == "blob" {
		body, ok = f.blobs[digest.Digest(ref)]
	}
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func (f *fakeRegistry) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *fakeRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// put stores ti's blobs and its manifest under tag and digest.
func (f *fakeRegistry) put(tag string, ti testImage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range append([][]byte{ti.config}, ti.layers...) {
		f.blobs[digest.FromBytes(b)] = b
	}
	f.manifests[tag] = ti.manifest
	f.manifests[ti.desc.Digest.String()] = ti.manifest
}

// tarOf builds an uncompressed layer of regular files name → body.
func tarOf(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

// sameSize gzips layer padded (with a gzip comment) to exactly n bytes, so
// that a substituted blob fails on its digest rather than its length.
func sameSize(t *testing.T, layer []byte, n int) []byte {
	t.Helper()
	plain := gz(layer)
	pad := n - len(plain) - 1
	if pad < 0 {
		t.Fatalf("substitute layer is %d bytes, more than %d", len(plain), n)
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Comment = strings.Repeat("p", pad)
	w.Write(layer)
	w.Close()
	if buf.Len() != n {
		t.Fatalf("padded substitute is %d bytes, want %d", buf.Len(), n)
	}
	return buf.Bytes()
}

func faultImage(t *testing.T, layers ...[]byte) testImage {
	t.Helper()
	return makeImage(t, ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}, hostArch(), layers...)
}

// faultStore opens an image store in its own directory, inside a parent
// directory that the test checks stays empty of anything else.
func faultStore(t *testing.T) (s *image.Store, root, parent string) {
	t.Helper()
	parent = t.TempDir()
	root = filepath.Join(parent, "store")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err = image.Open(root, db)
	if err != nil {
		t.Fatal(err)
	}
	return s, root, parent
}

// listing returns every path under dir with its size, for before/after
// comparisons (metadata.db changes size with its transactions: left out).
func listing(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || d.Name() == "metadata.db" {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// pullInto resolves ref and stores it through AddPulled, as the daemon does.
func pullInto(ctx context.Context, c *Client, s *image.Store, ref string) (*image.Image, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	img, err := c.ResolveImage(ctx, named, ocispec.Platform{OS: "linux", Architecture: hostArch()})
	if err != nil {
		return nil, err
	}
	p := image.Pulled{Config: img.Config, Refs: []string{ref}}
	for _, l := range img.Manifest.Layers {
		p.Layers = append(p.Layers, image.PulledLayer{Blob: l, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return c.FetchBlob(ctx, named, l)
		}})
	}
	return s.AddPulled(ctx, p)
}

// assertNothingLeft checks that a failed pull left no image and no files.
func assertNothingLeft(t *testing.T, s *image.Store, root, before string) {
	t.Helper()
	if imgs, err := s.List(); err != nil || len(imgs) != 0 {
		t.Fatalf("a failed pull left %d images (%v)", len(imgs), err)
	}
	if got := listing(t, root); got != before {
		t.Fatalf("a failed pull left files:\n%s\nwant:\n%s", got, before)
	}
}

// isClass returns a predicate for errors of class c.
func isClass(c errdefs.Class) func(error) bool {
	return func(err error) bool { return errdefs.ClassOf(err) == c }
}

func fastClient() *Client { return New(Options{Backoff: time.Millisecond, MaxAttempts: 3}) }

// TestFaultWrongDigest: a registry serving bytes that do not match the
// digests it advertised is refused at each level, and nothing is stored.
func TestFaultWrongDigest(t *testing.T) {
	f := newFakeRegistry(t)
	ti := faultImage(t, tarOf(t, "hello", "world"))
	f.put("v1", ti)
	c := fastClient()
	s, root, _ := faultStore(t)
	before := listing(t, root)
	ctx := context.Background()

	// The layer.
	f.mu.Lock()
	f.blobs[digest.FromBytes(ti.layers[0])] = sameSize(t, tarOf(t, "evil", "x"), len(ti.layers[0]))
	f.mu.Unlock()
	if _, err := pullInto(ctx, c, s, f.host+"/app:v1"); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("layer with the wrong digest: %v, want a mismatch error", err)
	}
	assertNothingLeft(t, s, root, before)

	// The config.
	f.mu.Lock()
	evil := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	f.blobs[digest.FromBytes(ti.config)] = []byte(evil + strings.Repeat(" ", len(ti.config)-len(evil)))
	f.mu.Unlock()
	if _, err := pullInto(ctx, c, s, f.host+"/app:v1"); err == nil || !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("config with the wrong digest: %v, want an invalid-parameter mismatch", err)
	}

	// A manifest fetched by digest.
	f.mu.Lock()
	f.manifests[ti.desc.Digest.String()] = faultImage(t, tarOf(t, "other", "y")).manifest
	f.mu.Unlock()
	if _, err := pullInto(ctx, c, s, f.host+"/app@"+ti.desc.Digest.String()); err == nil || !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("manifest with the wrong digest: %v, want an invalid-parameter mismatch", err)
	}
	assertNothingLeft(t, s, root, before)
}

// TestFaultTruncatedBlob: a registry that always drops the connection
// mid-blob is retried (with Range) a bounded number of times, then the pull
// fails as unavailable, leaving nothing behind. One drop is survived.
func TestFaultTruncatedBlob(t *testing.T) {
	f := newFakeRegistry(t)
	// Enough incompressible bytes that a cut lands inside the layer.
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i*7919 + i>>8)
	}
	ti := faultImage(t, tarOf(t, "big", string(big)))
	f.put("v1", ti)
	layer := ti.layers[0]
	layerPath := "/blobs/" + digest.FromBytes(layer).String()
	var mu sync.Mutex
	drops := 1 << 30
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, layerPath) || drops == 0 {
			return false
		}
		drops--
		off := 0
		if rg := r.Header.Get("Range"); rg != "" {
			off, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(layer)-1, len(layer)))
			w.Header().Set("Content-Length", strconv.Itoa(len(layer)-off))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(layer)))
		}
		// Half of what is left, then the connection dies.
		w.Write(layer[off : off+(len(layer)-off)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	c := fastClient()
	s, root, _ := faultStore(t)
	before := listing(t, root)
	ctx := context.Background()
	_, err := pullInto(ctx, c, s, f.host+"/app:v1")
	// The unpacker (internal/archive) keeps the download's class: a
	// broken registry is unavailable (503), not a bad request (400).
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "download blob") {
		t.Fatalf("blob always cut: %v, want a download error", err)
	}
	if errdefs.ClassOf(err) != errdefs.ClassUnavailable {
		t.Fatalf("blob always cut: class %v, want unavailable: %v", errdefs.ClassOf(err), err)
	}
	if n := f.count("GET blob"); n != 1+3 { // config + MaxAttempts tries of the layer
		t.Fatalf("%d blob GETs, want 4 (config and 3 tries)", n)
	}
	assertNothingLeft(t, s, root, before)

	mu.Lock()
	drops = 1
	mu.Unlock()
	img, err := pullInto(ctx, c, s, f.host+"/app:v1")
	if err != nil {
		t.Fatalf("blob cut once: %v", err)
	}
	if len(img.Layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(img.Layers))
	}
}

// TestFaultStatuses: each error status is classified; 429 and 5xx are
// retried a bounded number of times, the others not at all.
func TestFaultStatuses(t *testing.T) {
	f := newFakeRegistry(t)
	ti := faultImage(t, tarOf(t, "hello", "world"))
	f.put("v1", ti)
	c := fastClient()
	named, _ := ParseReference(f.host + "/app:v1")
	for _, tc := range []struct {
		status int
		tries  int
		is     func(error) bool
		text   string
	}{
		{http.StatusUnauthorized, 1, isClass(errdefs.ClassUnauthorized), "no authentication challenge"},
		{http.StatusForbidden, 1, isClass(errdefs.ClassForbidden), "denied"},
		{http.StatusNotFound, 1, errdefs.IsNotFound, "manifest unknown"},
		{http.StatusTooManyRequests, 3, isClass(errdefs.ClassUnavailable), "toomanyrequests"},
		{http.StatusInternalServerError, 3, func(error) bool { return true }, "500"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			before := f.count("GET manifest")
			f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				switch tc.status {
				case http.StatusForbidden:
					w.WriteHeader(tc.status)
					fmt.Fprint(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
				case http.StatusNotFound:
					w.WriteHeader(tc.status)
					fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
				case http.StatusTooManyRequests:
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(tc.status)
					fmt.Fprint(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limited"}]}`)
				default:
					w.WriteHeader(tc.status)
				}
				return true
			})
			t.Cleanup(func() { f.setHook(nil) })
			_, err := c.ResolveImage(context.Background(), named, ocispec.Platform{})
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("status %d: %v (class %v), want %q", tc.status, err, errdefs.ClassOf(err), tc.text)
			}
			if got := f.count("GET manifest") - before; got != tc.tries {
				t.Fatalf("status %d: %d manifest GETs, want %d", tc.status, got, tc.tries)
			}
		})
	}

	// Transient 429s then success.
	left := 2
	var mu sync.Mutex
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 || !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		left--
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	if _, err := c.ResolveImage(context.Background(), named, ocispec.Platform{}); err != nil {
		t.Fatalf("after two 429s: %v", err)
	}
}

// TestFaultBadManifest: malformed and oversized manifests are refused
// without reading an unbounded body.
func TestFaultBadManifest(t *testing.T) {
	f := newFakeRegistry(t)
	huge := `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","annotations":{"x":"` + strings.Repeat("a", maxManifestSize) + `"}}`
	f.mu.Lock()
	f.manifests["broken"] = []byte(`{"schemaVersion":2,"config":`)
	f.manifests["noconfig"] = []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","layers":[]}`)
	f.manifests["huge"] = []byte(huge)
	f.mu.Unlock()
	c := fastClient()
	for tag, want := range map[string]string{"broken": "unexpected end of JSON", "noconfig": "no config", "huge": "larger than"} {
		named, _ := ParseReference(f.host + "/app:" + tag)
		_, err := c.ResolveImage(context.Background(), named, ocispec.Platform{})
		if err == nil || !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("manifest %s: %v, want an invalid-parameter error with %q", tag, err, want)
		}
	}
}

// TestFaultPathTraversal: a layer whose entries climb out with ../ writes
// nothing outside the store.
func TestFaultPathTraversal(t *testing.T) {
	f := newFakeRegistry(t)
	ti := faultImage(t, tarOf(t, "ok", "fine", "../escaped", "x", "a/../../../escaped2", "y", "/abs-escaped", "z"))
	f.put("v1", ti)
	c := fastClient()
	s, root, parent := faultStore(t)
	_, err := pullInto(context.Background(), c, s, f.host+"/app:v1")
	var outside []string
	filepath.WalkDir(filepath.Dir(parent), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(d.Name(), "escaped") && !strings.HasPrefix(p, root+"/") {
			outside = append(outside, p)
		}
		return nil
	})
	for _, p := range []string{"/escaped", "/escaped2", "/abs-escaped"} {
		if _, err := os.Lstat(p); err == nil {
			outside = append(outside, p)
		}
	}
	if len(outside) > 0 {
		t.Fatalf("the layer wrote outside the store: %v", outside)
	}
	if err == nil || !strings.Contains(err.Error(), "leaves the root") {
		t.Fatalf("pull of a layer with ../ entries: %v, want it refused", err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("a refused layer left %d images", len(imgs))
	}
}
