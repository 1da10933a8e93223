package server

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testRegistry is a registry on a temp root behind an httptest server
// (loopback only).
type testRegistry struct {
	t    *testing.T
	root string
	srv  *Server
	http *httptest.Server
}

func newTestRegistry(t *testing.T, root string) *testRegistry {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	s, err := New(root, nil)
	if err != nil {
		t.Fatalf("New(%s): %v", root, err)
	}
	hs := httptest.NewServer(s)
	r := &testRegistry{t: t, root: root, srv: s, http: hs}
	t.Cleanup(r.stop)
	return r
}

// stop shuts the server down; safe to call twice.
func (r *testRegistry) stop() {
	if r.http != nil {
		r.http.Close()
		r.srv.Close()
		r.http = nil
	}
}

// do sends one request and returns the response with its body read.
func (r *testRegistry) do(method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	r.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = r.http.URL + path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, b
}

func (r *testRegistry) expect(resp *http.Response, body []byte, status int) {
	r.t.Helper()
	if resp.StatusCode != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
}

// errorCode returns the first spec error code of an error body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var er specs.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil || len(er.Errors) == 0 {
		t.Fatalf("not a spec error body: %s (%v)", body, err)
	}
	return er.Errors[0].Code
}

// pushMonolithic uploads b with a single POST ?digest=.
func (r *testRegistry) pushMonolithic(repo string, b []byte) digest.Digest {
	r.t.Helper()
	d := digest.FromBytes(b)
	resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), map[string]string{"Content-Type": "application/octet-stream"}, b)
	r.expect(resp, body, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		r.t.Fatalf("Docker-Content-Digest %q, want %s", got, d)
	}
	return d
}

// pushChunked uploads b in chunks of size n: POST, PATCH..., PUT.
func (r *testRegistry) pushChunked(repo string, b []byte, n int, alg digest.Algorithm) digest.Digest {
	r.t.Helper()
	resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	for off := 0; off < len(b); off += n {
		end := min(off+n, len(b))
		resp, body = r.do("PATCH", loc, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		}, b[off:end])
		r.expect(resp, body, http.StatusAccepted)
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", end-1); got != want {
			r.t.Fatalf("Range after chunk: %q, want %q", got, want)
		}
		loc = resp.Header.Get("Location")
	}
	d := alg.FromBytes(b)
	resp, body = r.do("PUT", loc+"?digest="+d.String(), nil, nil)
	r.expect(resp, body, http.StatusCreated)
	return d
}

// image is a small config + one layer + manifest for round trips.
type image struct {
	config, layer, manifest []byte
	desc                    ocispec.Descriptor
}

func (r *testRegistry) pushImage(repo, tag string, mutate func(m *ocispec.Manifest)) image {
	r.t.Helper()
	var im image
	im.config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	im.layer = make([]byte, 3000)
	rand.Read(im.layer)
	cd := r.pushMonolithic(repo, im.config)
	ld := r.pushChunked(repo, im.layer, 1024, digest.SHA256)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(im.config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ld, Size: int64(len(im.layer))}},
	}
	m.SchemaVersion = 2
	if mutate != nil {
		mutate(&m)
	}
	im.manifest, _ = json.Marshal(m)
	resp, body := r.do("PUT", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, im.manifest)
	r.expect(resp, body, http.StatusCreated)
	im.desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(im.manifest), Size: int64(len(im.manifest))}
	if got := resp.Header.Get("Docker-Content-Digest"); got != im.desc.Digest.String() {
		r.t.Fatalf("manifest Docker-Content-Digest %q, want %s", got, im.desc.Digest)
	}
	return im
}

func TestPing(t *testing.T) {
	r := newTestRegistry(t, "")
	resp, body := r.do("GET", "/v2/", nil, nil)
	r.expect(resp, body, http.StatusOK)
	if resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("missing API version header: %v", resp.Header)
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	r := newTestRegistry(t, "")
	im := r.pushImage("library/app", "v1", nil)
	for _, ref := range []string{"v1", im.desc.Digest.String()} {
		resp, body := r.do("GET", "/v2/library/app/manifests/"+ref, map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
		r.expect(resp, body, http.StatusOK)
		if !bytes.Equal(body, im.manifest) || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest ||
			resp.Header.Get("Docker-Content-Digest") != im.desc.Digest.String() {
			t.Fatalf("GET manifest %s: headers %v body %s", ref, resp.Header, body)
		}
		resp, body = r.do("HEAD", "/v2/library/app/manifests/"+ref, nil, nil)
		r.expect(resp, body, http.StatusOK)
		if resp.ContentLength != int64(len(im.manifest)) || len(body) != 0 {
			t.Fatalf("HEAD manifest %s: length %d body %d bytes", ref, resp.ContentLength, len(body))
		}
	}
	var m ocispec.Manifest
	json.Unmarshal(im.manifest, &m)
	resp, body := r.do("GET", "/v2/library/app/blobs/"+m.Layers[0].Digest.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, im.layer) {
		t.Fatal("layer bytes differ after chunked push")
	}
	resp, body = r.do("GET", "/v2/library/app/blobs/"+m.Layers[0].Digest.String(), map[string]string{"Range": "bytes=100-199"}, nil)
	r.expect(resp, body, http.StatusPartialContent)
	if !bytes.Equal(body, im.layer[100:200]) || resp.Header.Get("Content-Range") != "bytes 100-199/3000" {
		t.Fatalf("range read: Content-Range %q, %d bytes", resp.Header.Get("Content-Range"), len(body))
	}
	resp, body = r.do("GET", "/v2/library/app/blobs/"+m.Layers[0].Digest.String(), map[string]string{"Range": "bytes=5000-6000"}, nil)
	r.expect(resp, body, http.StatusRequestedRangeNotSatisfiable)
	// The blob lives where the daemon's content store would keep it.
	if _, err := r.srv.blobs.size(m.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
}

func TestManifestRejectsMissingBlobAndBadDigest(t *testing.T) {
	r := newTestRegistry(t, "")
	cfg := r.pushMonolithic("a/b", []byte("{}"))
	missing := digest.FromString("not pushed")
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":10}]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, cfg, ocispec.MediaTypeImageLayerGzip, missing)
	hdr := map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}
	resp, body := r.do("PUT", "/v2/a/b/manifests/x", hdr, []byte(m))
	r.expect(resp, body, http.StatusBadRequest)
	if c := errorCode(t, body); c != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("code %s, want MANIFEST_BLOB_UNKNOWN", c)
	}
	resp, body = r.do("PUT", "/v2/a/b/manifests/"+digest.FromString("other").String(), hdr, []byte(m))
	r.expect(resp, body, http.StatusBadRequest)
	if c := errorCode(t, body); c != "DIGEST_INVALID" {
		t.Fatalf("code %s, want DIGEST_INVALID", c)
	}
	resp, body = r.do("GET", "/v2/a/b/manifests/nope", nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	if c := errorCode(t, body); c != "MANIFEST_UNKNOWN" {
		t.Fatalf("code %s, want MANIFEST_UNKNOWN", c)
	}
	resp, body = r.do("GET", "/v2/a/b/blobs/sha256:baddigest", nil, nil)
	r.expect(resp, body, http.StatusBadRequest)
	resp, body = r.do("GET", "/v2/Upper/blobs/"+cfg.String(), nil, nil)
	r.expect(resp, body, http.StatusBadRequest)
	if c := errorCode(t, body); c != "NAME_INVALID" {
		t.Fatalf("code %s, want NAME_INVALID", c)
	}
}

func TestChunkOutOfOrderAndBadDigest(t *testing.T) {
	r := newTestRegistry(t, "")
	resp, body := r.do("POST", "/v2/repo/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	resp, body = r.do("PATCH", loc, map[string]string{"Content-Range": "0-3"}, []byte("abcd"))
	r.expect(resp, body, http.StatusAccepted)
	resp, body = r.do("PATCH", loc, map[string]string{"Content-Range": "10-13"}, []byte("wxyz"))
	r.expect(resp, body, http.StatusRequestedRangeNotSatisfiable)
	resp, body = r.do("GET", loc, nil, nil)
	r.expect(resp, body, http.StatusNoContent)
	if resp.Header.Get("Range") != "0-3" {
		t.Fatalf("Range after rejected chunk: %q, want 0-3", resp.Header.Get("Range"))
	}
	resp, body = r.do("PUT", loc+"?digest="+digest.FromString("wrong").String(), nil, nil)
	r.expect(resp, body, http.StatusBadRequest)
	resp, body = r.do("DELETE", loc, nil, nil)
	r.expect(resp, body, http.StatusNoContent)
	resp, body = r.do("GET", loc, nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	if c := errorCode(t, body); c != "BLOB_UPLOAD_UNKNOWN" {
		t.Fatalf("code %s, want BLOB_UPLOAD_UNKNOWN", c)
	}
}

func TestSHA512Blob(t *testing.T) {
	r := newTestRegistry(t, "")
	b := []byte("sha512 content")
	d := r.pushChunked("repo", b, 5, digest.SHA512)
	resp, body := r.do("GET", "/v2/repo/blobs/"+d.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, b) || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("sha512 blob: %s %v", body, resp.Header)
	}
}

func TestUploadResumesAfterRestart(t *testing.T) {
	root := t.TempDir()
	r := newTestRegistry(t, root)
	b := []byte("0123456789abcdefghij")
	resp, body := r.do("POST", "/v2/repo/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	resp, body = r.do("PATCH", loc, map[string]string{"Content-Range": "0-9"}, b[:10])
	r.expect(resp, body, http.StatusAccepted)
	// A session a crash left half-made (no repo file) and one untouched
	// for longer than uploadMaxAge are removed on start.
	debris := filepath.Join(root, "uploads", newUploadID())
	if err := os.MkdirAll(debris, 0o700); err != nil {
		t.Fatal(err)
	}
	resp, body = r.do("POST", "/v2/repo/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	stale := filepath.Join(root, "uploads", resp.Header.Get("Docker-Upload-UUID"))
	old := time.Now().Add(-uploadMaxAge - time.Hour)
	if err := os.Chtimes(filepath.Join(stale, "data"), old, old); err != nil {
		t.Fatal(err)
	}
	r.stop()

	r2 := newTestRegistry(t, root)
	for _, d := range []string{debris, stale} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("upload %s survived a restart: %v", d, err)
		}
	}
	resp, body = r2.do("GET", loc, nil, nil)
	r2.expect(resp, body, http.StatusNoContent)
	if resp.Header.Get("Range") != "0-9" {
		t.Fatalf("resumed upload Range %q, want 0-9", resp.Header.Get("Range"))
	}
	resp, body = r2.do("PATCH", loc, map[string]string{"Content-Range": "10-19"}, b[10:])
	r2.expect(resp, body, http.StatusAccepted)
	d := digest.FromBytes(b)
	resp, body = r2.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), nil, nil)
	r2.expect(resp, body, http.StatusCreated)
	resp, body = r2.do("GET", "/v2/repo/blobs/"+d.String(), nil, nil)
	r2.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, b) {
		t.Fatalf("resumed blob %q, want %q", body, b)
	}
}

func TestTagsAndCatalogPagination(t *testing.T) {
	r := newTestRegistry(t, "")
	im := r.pushImage("p/q", "t0", nil)
	for _, tag := range []string{"t3", "t1", "t4", "t2"} {
		resp, body := r.do("PUT", "/v2/p/q/manifests/"+tag, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, im.manifest)
		r.expect(resp, body, http.StatusCreated)
	}
	var all []string
	next := "/v2/p/q/tags/list?n=2"
	for next != "" {
		resp, body := r.do("GET", next, nil, nil)
		r.expect(resp, body, http.StatusOK)
		var tl specs.TagList
		if err := json.Unmarshal(body, &tl); err != nil {
			t.Fatal(err)
		}
		all = append(all, tl.Tags...)
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if strings.Join(all, ",") != "t0,t1,t2,t3,t4" {
		t.Fatalf("paged tags %v", all)
	}
	resp, body := r.do("GET", "/v2/unknown/tags/list", nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	if c := errorCode(t, body); c != "NAME_UNKNOWN" {
		t.Fatalf("code %s, want NAME_UNKNOWN", c)
	}

	r.pushMonolithic("a/first", []byte("x"))
	r.pushMonolithic("z/last", []byte("x"))
	resp, body = r.do("GET", "/v2/_catalog?n=2", nil, nil)
	r.expect(resp, body, http.StatusOK)
	var rl specs.RepositoryList
	json.Unmarshal(body, &rl)
	if strings.Join(rl.Repositories, ",") != "a/first,p/q" || !strings.Contains(resp.Header.Get("Link"), "last=p%2Fq") {
		t.Fatalf("catalog page 1: %v, Link %q", rl.Repositories, resp.Header.Get("Link"))
	}
	resp, body = r.do("GET", "/v2/_catalog?n=2&last=p/q", nil, nil)
	r.expect(resp, body, http.StatusOK)
	json.Unmarshal(body, &rl)
	if strings.Join(rl.Repositories, ",") != "z/last" || resp.Header.Get("Link") != "" {
		t.Fatalf("catalog page 2: %v, Link %q", rl.Repositories, resp.Header.Get("Link"))
	}
}

func TestReferrers(t *testing.T) {
	r := newTestRegistry(t, "")
	subject := r.pushImage("repo", "base", nil)
	sig := r.pushImage("repo", "sig", func(m *ocispec.Manifest) {
		m.ArtifactType = "application/vnd.example.sig"
		m.Subject = &subject.desc
		m.Annotations = map[string]string{"k": "v"}
	})
	sbom := r.pushImage("repo", "sbom", func(m *ocispec.Manifest) {
		m.ArtifactType = "application/vnd.example.sbom"
		m.Subject = &subject.desc
	})
	list := func(q string) (ocispec.Index, *http.Response) {
		resp, body := r.do("GET", "/v2/repo/referrers/"+subject.desc.Digest.String()+q, nil, nil)
		r.expect(resp, body, http.StatusOK)
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatal(err)
		}
		return idx, resp
	}
	idx, _ := list("")
	if len(idx.Manifests) != 2 || idx.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("referrers: %+v", idx)
	}
	idx, resp := list("?artifactType=application/vnd.example.sig")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sig.desc.Digest || idx.Manifests[0].Annotations["k"] != "v" ||
		resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %+v %v", idx, resp.Header)
	}
	// Deleting a referrer removes it from its subject's list.
	resp, body := r.do("DELETE", "/v2/repo/manifests/"+sbom.desc.Digest.String(), nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	if idx, _ = list(""); len(idx.Manifests) != 1 {
		t.Fatalf("referrers after delete: %+v", idx)
	}
	// An unknown subject has an empty list, not a 404.
	resp, body = r.do("GET", "/v2/repo/referrers/"+digest.FromString("none").String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
}

func TestSubjectHeader(t *testing.T) {
	r := newTestRegistry(t, "")
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 1}
	cfg := r.pushMonolithic("repo", []byte("{}"))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/x",
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: cfg, Size: 2}, Layers: []ocispec.Descriptor{}, Subject: &missing}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	resp, body := r.do("PUT", "/v2/repo/manifests/"+digest.FromBytes(b).String(), map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, b)
	r.expect(resp, body, http.StatusCreated)
	if resp.Header.Get("OCI-Subject") != missing.Digest.String() {
		t.Fatalf("OCI-Subject %q, want %s", resp.Header.Get("OCI-Subject"), missing.Digest)
	}
}

func TestDeleteAndMount(t *testing.T) {
	r := newTestRegistry(t, "")
	im := r.pushImage("src", "v1", nil)
	var m ocispec.Manifest
	json.Unmarshal(im.manifest, &m)
	layer := m.Layers[0].Digest

	// Not in the target repository until mounted.
	resp, body := r.do("HEAD", "/v2/dst/blobs/"+layer.String(), nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	resp, body = r.do("POST", "/v2/dst/blobs/uploads/?mount="+layer.String()+"&from=src", nil, nil)
	r.expect(resp, body, http.StatusCreated)
	resp, body = r.do("HEAD", "/v2/dst/blobs/"+layer.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	// A mount from a repository without the blob falls back to a session.
	resp, body = r.do("POST", "/v2/dst/blobs/uploads/?mount="+digest.FromString("x").String()+"&from=src", nil, nil)
	r.expect(resp, body, http.StatusAccepted)

	resp, body = r.do("PUT", "/v2/src/manifests/v2", map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, im.manifest)
	r.expect(resp, body, http.StatusCreated)
	resp, body = r.do("DELETE", "/v2/src/manifests/v1", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	resp, body = r.do("GET", "/v2/src/manifests/v1", nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	resp, body = r.do("GET", "/v2/src/manifests/v2", nil, nil)
	r.expect(resp, body, http.StatusOK)
	resp, body = r.do("DELETE", "/v2/src/manifests/"+im.desc.Digest.String(), nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	resp, body = r.do("GET", "/v2/src/manifests/v2", nil, nil)
	r.expect(resp, body, http.StatusNotFound)

	resp, body = r.do("DELETE", "/v2/src/blobs/"+layer.String(), nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	resp, body = r.do("GET", "/v2/src/blobs/"+layer.String(), nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	if c := errorCode(t, body); c != "BLOB_UNKNOWN" {
		t.Fatalf("code %s, want BLOB_UNKNOWN", c)
	}
	// The mounted copy in dst is unaffected.
	resp, body = r.do("GET", "/v2/dst/blobs/"+layer.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
}

func TestParseRoute(t *testing.T) {
	for _, c := range []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/a/b/blobs/sha256:ab", route{"a/b", "blobs", "sha256:ab"}, true},
		{"/v2/a/blobs/uploads/", route{"a", "uploads", ""}, true},
		{"/v2/a/blobs/uploads/123", route{"a", "uploads", "123"}, true},
		{"/v2/x/manifests/blobs/manifests/latest", route{"x/manifests/blobs", "manifests", "latest"}, true},
		{"/v2/a/tags/list", route{"a", "tags", ""}, true},
		{"/v2/a/referrers/sha256:ab", route{"a", "referrers", "sha256:ab"}, true},
		{"/v2/a/other/thing", route{}, false},
	} {
		got, ok := parseRoute(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}
