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
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The server side of the distribution issue's fault tests: what a broken
// or hostile client sends is refused with the spec's error code and leaves
// nothing behind.

func TestRejectsBadDigests(t *testing.T) {
	r := newTestRegistry(t, "")
	content := []byte("the real bytes")
	wrong := digest.FromString("other bytes")
	octet := map[string]string{"Content-Type": "application/octet-stream"}

	// Monolithic upload whose bytes do not match its digest.
	resp, body := r.do("POST", "/v2/repo/blobs/uploads/?digest="+wrong.String(), octet, content)
	r.expect(resp, body, http.StatusBadRequest)
	if c := errorCode(t, body); c != "DIGEST_INVALID" {
		t.Errorf("monolithic wrong digest: code %s, want DIGEST_INVALID", c)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes(content)} {
		if st := r.blobStatus("repo", d); st != http.StatusNotFound {
			t.Errorf("blob %s after a rejected upload: status %d, want 404", d, st)
		}
		if _, err := os.Stat(r.srv.blobs.path(d)); err == nil {
			t.Errorf("blob %s was stored by a rejected upload", d)
		}
	}

	// Malformed digests and unknown algorithms, on every route taking one.
	for _, bad := range []string{"sha256:xyz", "sha256:" + strings.Repeat("a", 63), "md5:d41d8cd98f00b204e9800998ecf8427e", "nodigest"} {
		resp, body = r.do("POST", "/v2/repo/blobs/uploads/?digest="+bad, octet, content)
		r.expect(resp, body, http.StatusBadRequest)
		if c := errorCode(t, body); c != "DIGEST_INVALID" {
			t.Errorf("POST ?digest=%s: code %s, want DIGEST_INVALID", bad, c)
		}
		if bad == "nodigest" { // a tag, not a digest, on the manifest route
			continue
		}
		resp, body = r.do("GET", "/v2/repo/blobs/"+bad, nil, nil)
		r.expect(resp, body, http.StatusBadRequest)
		resp, body = r.do("GET", "/v2/repo/manifests/"+bad, nil, nil)
		r.expect(resp, body, http.StatusBadRequest)
	}

	// A session finished with the wrong digest stays open at its offset, so
	// the client can retry with the right one.
	resp, body = r.do("POST", "/v2/repo/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	resp, body = r.do("PATCH", loc, octet, content)
	r.expect(resp, body, http.StatusAccepted)
	loc = resp.Header.Get("Location")
	resp, body = r.do("PUT", loc+"?digest="+wrong.String(), nil, nil)
	r.expect(resp, body, http.StatusBadRequest)
	if c := errorCode(t, body); c != "DIGEST_INVALID" {
		t.Errorf("PUT wrong digest: code %s, want DIGEST_INVALID", c)
	}
	if st := r.blobStatus("repo", wrong); st != http.StatusNotFound {
		t.Errorf("blob under the wrong digest: status %d, want 404", st)
	}
	resp, body = r.do("PUT", loc+"?digest="+digest.FromBytes(content).String(), nil, nil)
	r.expect(resp, body, http.StatusCreated)
	resp, body = r.do("GET", "/v2/repo/blobs/"+digest.FromBytes(content).String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, content) {
		t.Errorf("blob after retry: %q, want %q", body, content)
	}
	assertNoIngestDebris(t, r)
}

func TestUnknownUploadSessions(t *testing.T) {
	r := newTestRegistry(t, "")
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	d := digest.FromString("x").String()
	never := "/v2/repo/blobs/uploads/" + newUploadID()
	for _, c := range []struct{ method, path string }{
		{"GET", never},
		{"PATCH", never},
		{"PUT", never + "?digest=" + d},
		{"DELETE", never},
		// Not a session id at all: never a path under uploads/.
		{"PATCH", "/v2/repo/blobs/uploads/.."},
		{"PUT", "/v2/repo/blobs/uploads/..?digest=" + d},
		{"GET", "/v2/repo/blobs/uploads/not-a-uuid"},
	} {
		resp, body := r.do(c.method, c.path, octet, []byte("x"))
		r.expect(resp, body, http.StatusNotFound)
		if code := errorCode(t, body); code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("%s %s: code %s, want BLOB_UPLOAD_UNKNOWN", c.method, c.path, code)
		}
	}

	// A live session belongs to its repository: another one cannot see,
	// write or finish it.
	resp, body := r.do("POST", "/v2/repo/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	other := strings.Replace(loc, "/v2/repo/", "/v2/other/", 1)
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		resp, body = r.do(m, other, octet, []byte("x"))
		r.expect(resp, body, http.StatusNotFound)
		if code := errorCode(t, body); code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("%s of repo's session through other: code %s", m, code)
		}
	}
	resp, body = r.do("GET", loc, nil, nil)
	r.expect(resp, body, http.StatusNoContent)
	if got := resp.Header.Get("Range"); got != "0-0" {
		t.Errorf("session written through another repository: Range %q, want 0-0", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.root, "uploads")); len(ents) != 1 {
		t.Errorf("uploads/ holds %d sessions, want only the one started", len(ents))
	}
}

func TestRejectsOversizedManifest(t *testing.T) {
	r := newTestRegistry(t, "")
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := r.pushMonolithic("big/repo", cfg)
	// manifestOfSize pads a valid image manifest with an annotation to
	// exactly n bytes.
	manifestOfSize := func(n int) []byte {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
			Layers:      []ocispec.Descriptor{},
			Annotations: map[string]string{"pad": ""}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		m.Annotations["pad"] = strings.Repeat("p", n-len(b))
		b, _ = json.Marshal(m)
		if len(b) != n {
			t.Fatalf("padded manifest is %d bytes, want %d", len(b), n)
		}
		return b
	}
	hdr := map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}

	over := manifestOfSize(maxManifestSize + 1)
	resp, body := r.do("PUT", "/v2/big/repo/manifests/over", hdr, over)
	r.expect(resp, body, http.StatusRequestEntityTooLarge)
	if c := errorCode(t, body); c != "SIZE_INVALID" {
		t.Errorf("oversized manifest: code %s, want SIZE_INVALID", c)
	}
	resp, body = r.do("GET", "/v2/big/repo/manifests/over", nil, nil)
	r.expect(resp, body, http.StatusNotFound)
	if _, err := os.Stat(r.srv.blobs.path(digest.FromBytes(over))); err == nil {
		t.Error("the oversized manifest's bytes were stored")
	}

	// The limit is the spec's minimum: exactly 4 MiB is accepted and
	// served back whole.
	limit := manifestOfSize(maxManifestSize)
	resp, body = r.do("PUT", "/v2/big/repo/manifests/limit", hdr, limit)
	r.expect(resp, body, http.StatusCreated)
	resp, body = r.do("GET", "/v2/big/repo/manifests/limit", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, limit) {
		t.Errorf("4 MiB manifest served back as %d bytes", len(body))
	}
}

func TestRejectsUnauthenticatedPush(t *testing.T) {
	htpasswd := writeHtpasswd(t, map[string]string{"alice": "secret"})
	r := newOptRegistry(t, func(string) []Option {
		return []Option{WithAuth(AuthConfig{Htpasswd: htpasswd})}
	})
	alice := map[string]string{"Authorization": basic("alice", "secret")}
	content := []byte("pushed without credentials")
	d := digest.FromBytes(content)

	// alice opens a session: its Location must not let anyone else in.
	resp, body := r.do("POST", "/v2/team/app/blobs/uploads/", alice, nil)
	r.expect(resp, body, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, d, len(content))

	for _, auth := range []string{"", basic("alice", "wrong"), basic("mallory", "secret"), "Bearer forged"} {
		hdr := map[string]string{"Content-Type": "application/octet-stream"}
		if auth != "" {
			hdr["Authorization"] = auth
		}
		for _, c := range []struct {
			method, path string
			body         []byte
		}{
			{"POST", "/v2/team/app/blobs/uploads/", nil},
			{"POST", "/v2/team/app/blobs/uploads/?digest=" + d.String(), content},
			{"PATCH", loc, content},
			{"PUT", loc + "?digest=" + d.String(), content},
			{"DELETE", loc, nil},
			{"PUT", "/v2/team/app/manifests/v1", []byte(manifest)},
			{"DELETE", "/v2/team/app/blobs/" + d.String(), nil},
		} {
			resp, body := r.do(c.method, c.path, hdr, c.body)
			r.expect(resp, body, http.StatusUnauthorized)
			if code := errorCode(t, body); code != "UNAUTHORIZED" {
				t.Errorf("%s %s with %q: code %s, want UNAUTHORIZED", c.method, c.path, auth, code)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: 401 without a challenge", c.method, c.path, auth)
			}
		}
	}
	// Nothing of it reached the store, and alice's session is untouched.
	if _, err := os.Stat(r.srv.blobs.path(d)); err == nil {
		t.Error("an unauthenticated push stored its blob")
	}
	resp, body = r.do("GET", loc, alice, nil)
	r.expect(resp, body, http.StatusNoContent)
	if got := resp.Header.Get("Range"); got != "0-0" {
		t.Errorf("alice's session after the attempts: Range %q, want 0-0", got)
	}
	resp, body = r.do("GET", "/v2/team/app/manifests/v1", alice, nil)
	r.expect(resp, body, http.StatusNotFound)
}

func TestConcurrentPushesOfSameBlob(t *testing.T) {
	r := newTestRegistry(t, "")
	content := make([]byte, 1<<20+123)
	rand.Read(content)
	d := digest.FromBytes(content)
	repos := []string{"race/a", "race/b", "race/c"}

	// push uploads content to repo monolithically or in chunks, and
	// returns what went wrong (t.Fatal is not for goroutines).
	push := func(repo string, chunked bool) error {
		do := func(method, url string, hdr map[string]string, body []byte) (*http.Response, error) {
			req, _ := http.NewRequest(method, r.http.URL+url, bytes.NewReader(body))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp, nil
		}
		octet := map[string]string{"Content-Type": "application/octet-stream"}
		if !chunked {
			resp, err := do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), octet, content)
			if err == nil && resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("monolithic push to %s: status %d", repo, resp.StatusCode)
			}
			return err
		}
		resp, err := do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("start upload to %s: %v %v", repo, resp, err)
		}
		loc := resp.Header.Get("Location")
		const chunk = 256 << 10
		for off := 0; off < len(content); off += chunk {
			end := min(off+chunk, len(content))
			hdr := map[string]string{"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", off, end-1)}
			resp, err = do("PATCH", loc, hdr, content[off:end])
			if err != nil || resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("chunk %d to %s: %v %v", off, repo, resp, err)
			}
			loc = resp.Header.Get("Location")
		}
		resp, err = do("PUT", loc+"?digest="+d.String(), nil, nil)
		if err == nil && resp.StatusCode != http.StatusCreated {
			err = fmt.Errorf("finish upload to %s: status %d", repo, resp.StatusCode)
		}
		return err
	}

	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := push(repos[i%len(repos)], i%2 == 1); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, repo := range repos {
		resp, body := r.do("GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
		r.expect(resp, body, http.StatusOK)
		if !bytes.Equal(body, content) {
			t.Errorf("%s: blob after concurrent pushes is %d bytes and differs", repo, len(body))
		}
	}
	// Every session was consumed by its PUT; no temp file is left.
	if ents, _ := os.ReadDir(filepath.Join(r.root, "uploads")); len(ents) != 0 {
		t.Errorf("uploads/ holds %d sessions after every push finished", len(ents))
	}
	assertNoIngestDebris(t, r)
}

// TestManifestCacheFollowsDeletes makes sure serving manifests from memory
// never answers for a manifest the repository no longer has.
func TestManifestCacheFollowsDeletes(t *testing.T) {
	r := newTestRegistry(t, "")
	im := r.pushImage("cache/app", "v1", nil)
	accept := map[string]string{"Accept": ocispec.MediaTypeImageManifest}
	resp, body := r.do("GET", "/v2/cache/app/manifests/v1", accept, nil)
	r.expect(resp, body, http.StatusOK)
	resp, body = r.do("DELETE", "/v2/cache/app/manifests/"+im.desc.Digest.String(), nil, nil)
	r.expect(resp, body, http.StatusAccepted)
	for _, ref := range []string{"v1", im.desc.Digest.String()} {
		for _, m := range []string{"GET", "HEAD"} {
			resp, body = r.do(m, "/v2/cache/app/manifests/"+ref, accept, nil)
			r.expect(resp, body, http.StatusNotFound)
		}
	}
	// Another repository never had it, cached or not.
	resp, body = r.do("GET", "/v2/cache/other/manifests/"+im.desc.Digest.String(), accept, nil)
	r.expect(resp, body, http.StatusNotFound)
	// Pushed again it is served again, byte for byte.
	resp, body = r.do("PUT", "/v2/cache/app/manifests/v2", map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, im.manifest)
	r.expect(resp, body, http.StatusCreated)
	resp, body = r.do("GET", "/v2/cache/app/manifests/v2", accept, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, im.manifest) || resp.ContentLength != int64(len(im.manifest)) {
		t.Errorf("re-pushed manifest served as %d bytes (Content-Length %d), want %d", len(body), resp.ContentLength, len(im.manifest))
	}
}

func assertNoIngestDebris(t *testing.T, r *testRegistry) {
	t.Helper()
	if ents, _ := os.ReadDir(r.srv.blobs.ingestDir()); len(ents) != 0 {
		t.Errorf("%s holds %d temp files", r.srv.blobs.ingestDir(), len(ents))
	}
}

func TestWholeBlobGETFromMappings(t *testing.T) {
	r := newTestRegistry(t, "")
	// Two mapping windows and a partial third page.
	big := make([]byte, 2*mapWindow+12345)
	rand.Read(big)
	d := r.pushMonolithic("maps/app", big)
	empty := r.pushMonolithic("maps/app", []byte{})
	resp, body := r.do("GET", "/v2/maps/app/blobs/"+d.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	if !bytes.Equal(body, big) || resp.ContentLength != int64(len(big)) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("whole GET: %d bytes (Content-Length %d, Accept-Ranges %q), equal %v",
			len(body), resp.ContentLength, resp.Header.Get("Accept-Ranges"), bytes.Equal(body, big))
	}
	resp, body = r.do("GET", "/v2/maps/app/blobs/"+empty.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	if len(body) != 0 || resp.ContentLength != 0 {
		t.Errorf("empty blob: %d bytes, Content-Length %d", len(body), resp.ContentLength)
	}
	// Ranges and conditions keep ServeContent's rules.
	resp, body = r.do("GET", "/v2/maps/app/blobs/"+d.String(), map[string]string{"Range": fmt.Sprintf("bytes=%d-", mapWindow-10)}, nil)
	r.expect(resp, body, http.StatusPartialContent)
	if !bytes.Equal(body, big[mapWindow-10:]) {
		t.Errorf("open-ended range across a window: %d bytes", len(body))
	}
	resp, body = r.do("GET", "/v2/maps/app/blobs/"+d.String(), map[string]string{"If-None-Match": `"` + d.String() + `"`}, nil)
	r.expect(resp, body, http.StatusNotModified)
}

// faultingWriter truncates the mapped file on the first write and then
// reads the bytes it was given, as net/http does with the first KiB.
type faultingWriter struct {
	http.ResponseWriter
	f *os.File
}

// faultSink keeps faultingWriter's reads from being optimised away.
var faultSink byte

func (w faultingWriter) Write(p []byte) (int, error) {
	if err := os.Truncate(w.f.Name(), 0); err != nil {
		panic(err)
	}
	for i := 0; i < len(p); i += 4096 {
		faultSink += p[i]
	}
	return len(p), nil
}

func TestMappedBlobTruncatedUnderneathAbortsResponse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 2*mapMin), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer func() {
		if got := recover(); got != http.ErrAbortHandler {
			t.Fatalf("a blob truncated under its mapping: recovered %v, want http.ErrAbortHandler", got)
		}
	}()
	serveMapped(faultingWriter{httptest.NewRecorder(), f}, f)
	t.Fatal("serveMapped returned although the mapped file lost its pages")
}
