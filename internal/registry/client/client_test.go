package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"berth/internal/errdefs"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseReference(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                                 "docker.io/library/busybox:latest",
		"busybox:1.36":                            "docker.io/library/busybox:1.36",
		"user/app":                                "docker.io/user/app:latest",
		"127.0.0.1:5000/ns/repo:tag":              "127.0.0.1:5000/ns/repo:tag",
		"localhost/x@sha256:" + hex64('a'):        "localhost/x@sha256:" + hex64('a'),
		"h:5000/ns/repo:tag@sha256:" + hex64('b'): "h:5000/ns/repo:tag@sha256:" + hex64('b'),
	} {
		got, err := ParseReference(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseReference(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	named, _ := ParseReference("h:5000/ns/repo:tag@sha256:" + hex64('b'))
	if manifestRef(named) != "sha256:"+hex64('b') {
		t.Errorf("a digest must win over the tag, got %s", manifestRef(named))
	}
	if named, _ := ParseReference("busybox"); endpointHost(named) != "registry-1.docker.io" {
		t.Errorf("docker.io endpoint: %s", endpointHost(named))
	}
	for _, bad := range []string{"Busybox", "a::b", ""} {
		if _, err := ParseReference(bad); !errdefs.IsInvalidParameter(err) {
			t.Errorf("ParseReference(%q): %v, want invalid parameter", bad, err)
		}
	}
	if !isLoopback("127.0.0.1:5000") || !isLoopback("localhost") || !isLoopback("[::1]:80") || isLoopback("example.com:5000") {
		t.Error("isLoopback")
	}
}

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

func TestParseChallenge(t *testing.T) {
	ch := parseChallenge([]string{`Basic realm="x"`, `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"`})
	if ch == nil || ch.scheme != "bearer" || ch.params["realm"] != "https://auth.docker.io/token" ||
		ch.params["service"] != "registry.docker.io" || ch.params["scope"] != "repository:library/busybox:pull,push" {
		t.Fatalf("parseChallenge: %+v", ch)
	}
	if ch := parseChallenge([]string{`Basic realm="basic-realm"`}); ch == nil || ch.scheme != "basic" {
		t.Fatalf("basic: %+v", ch)
	}
}

func TestSelectPlatform(t *testing.T) {
	ms := []ocispec.Descriptor{
		{Digest: "sha256:arm", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{Digest: "sha256:att", Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}},
		{Digest: "sha256:amd", Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: "sha256:arm64", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}
	for _, tc := range []struct {
		p    ocispec.Platform
		want digest.Digest
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "sha256:amd"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "sha256:arm64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "sha256:arm"},
	} {
		p, want := tc.p, tc.want
		if got, ok := SelectPlatform(ms, p); !ok || got.Digest != want {
			t.Errorf("SelectPlatform(%v) = %s, %v; want %s", p, got.Digest, ok, want)
		}
	}
	if _, ok := SelectPlatform(ms, ocispec.Platform{OS: "windows", Architecture: "amd64"}); ok {
		t.Error("windows matched a linux image")
	}
}

// TestPullRoundTrip pushes a gzip busybox image into the real registry and
// resolves and fetches it back.
func TestPullRoundTrip(t *testing.T) {
	host := startRegistry(t)
	c := New(Options{})
	ti := busyboxImage(t)
	push(t, c, host+"/library/busybox:latest", ti)
	// A second push finds the blobs there already.
	push(t, c, host+"/library/busybox:latest", ti)

	ctx := context.Background()
	named, _ := ParseReference(host + "/library/busybox")
	desc, err := c.Resolve(ctx, named)
	if err != nil || desc.Digest != ti.desc.Digest || desc.MediaType != MediaTypeDockerManifest {
		t.Fatalf("Resolve: %+v, %v; want %s", desc, err, ti.desc.Digest)
	}
	img, err := c.ResolveImage(ctx, named, ocispec.Platform{OS: "linux", Architecture: hostArch()})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != ti.desc.Digest || img.ManifestDigest != ti.desc.Digest || !bytes.Equal(img.Config, ti.config) {
		t.Fatalf("ResolveImage: digest %s manifest %s", img.Digest, img.ManifestDigest)
	}
	rc, err := c.FetchBlob(ctx, named, img.Manifest.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, ti.layers[0]) {
		t.Fatalf("layer: %d bytes, want %d", len(got), len(ti.layers[0]))
	}
	// By digest, too.
	byDigest, _ := ParseReference(host + "/library/busybox@" + ti.desc.Digest.String())
	if img, err := c.ResolveImage(ctx, byDigest, ocispec.Platform{OS: "linux", Architecture: hostArch()}); err != nil || img.ManifestDigest != ti.desc.Digest {
		t.Fatalf("by digest: %v", err)
	}
}

func TestManifestNotFound(t *testing.T) {
	host := startRegistry(t)
	c := New(Options{})
	named, _ := ParseReference(host + "/apicap/nope:v1")
	_, err := c.ResolveImage(context.Background(), named, ocispec.Platform{OS: "linux", Architecture: hostArch()})
	want := "manifest for " + host + "/apicap/nope:v1 not found: manifest unknown: manifest unknown"
	if err == nil || err.Error() != want || !errdefs.IsNotFound(err) {
		t.Fatalf("error %v (not found %v), want %q", err, errdefs.IsNotFound(err), want)
	}
}

// TestIndex pushes an index of two platforms and checks that the host's is
// chosen while the index digest is what the reference resolved to.
func TestIndex(t *testing.T) {
	host := startRegistry(t)
	c := New(Options{})
	cfg, layer := busyboxLayer(t)
	mine := makeImage(t, cfg, hostArch(), layer)
	other := "arm64"
	if hostArch() == "arm64" {
		other = "amd64"
	}
	theirs := makeImage(t, cfg, other, layer)
	push(t, c, host+"/multi:mine", mine)
	push(t, c, host+"/multi:theirs", theirs)
	idx, _ := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{theirs.desc, mine.desc},
	})
	named, _ := ParseReference(host + "/multi:latest")
	if _, err := c.PushManifest(context.Background(), named, ocispec.MediaTypeImageIndex, idx); err != nil {
		t.Fatal(err)
	}
	img, err := c.ResolveImage(context.Background(), named, ocispec.Platform{OS: "linux", Architecture: hostArch()})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digest.FromBytes(idx) || img.ManifestDigest != mine.desc.Digest {
		t.Fatalf("digest %s manifest %s; want index %s manifest %s", img.Digest, img.ManifestDigest, digest.FromBytes(idx), mine.desc.Digest)
	}
	if _, err := c.ResolveImage(context.Background(), named, ocispec.Platform{OS: "linux", Architecture: "s390x"}); !errdefs.IsNotFound(err) {
		t.Fatalf("s390x: %v, want not found", err)
	}
}

// gate is a proxy in front of the registry that can demand credentials,
// fail requests and break connections, to test the client's behaviour.
type gate struct {
	t       *testing.T
	proxy   *httputil.ReverseProxy
	handler func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newGate(t *testing.T, registry string) (*gate, string) {
	u, _ := url.Parse("http://" + registry)
	g := &gate{t: t, proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.handler != nil && g.handler(w, r) {
			return
		}
		g.proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return g, strings.TrimPrefix(srv.URL, "http://")
}

func TestBasicAuth(t *testing.T) {
	host := startRegistry(t)
	g, gw := newGate(t, host)
	g.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "secret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="basic-realm"`)
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		return true
	}
	ti := busyboxImage(t)
	creds := func(domain string) Credentials {
		if domain != gw {
			t.Errorf("credentials asked for %q, want %q", domain, gw)
		}
		return Credentials{Username: "alice", Password: "secret"}
	}
	push(t, New(Options{Credentials: creds}), gw+"/app:v1", ti)

	named, _ := ParseReference(gw + "/app:v1")
	_, err := New(Options{}).ResolveImage(context.Background(), named, ocispec.Platform{})
	if err == nil || !strings.HasSuffix(err.Error(), "no basic auth credentials") || !strings.Contains(err.Error(), `Get "http://`+gw+`/v2/app/manifests/v1"`) {
		t.Fatalf("anonymous: %v", err)
	}
	wrong := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "alice", Password: "nope"} }})
	if _, err := wrong.ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil || !contains(err.Error(), "unauthorized: authentication required") {
		t.Fatalf("wrong password: %v", err)
	}
	img, err := New(Options{Credentials: creds}).ResolveImage(context.Background(), named, ocispec.Platform{})
	if err != nil || img.ManifestDigest != ti.desc.Digest {
		t.Fatalf("with credentials: %v", err)
	}
}

// tokenServer is a docker token service: it hands out bearer tokens for
// the scopes asked, to alice only, and remembers them.
type tokenServer struct {
	mu     sync.Mutex
	valid  map[string]string // token -> scope
	issued int
	scopes []string
	url    string
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{valid: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("service") != "test-registry" {
			http.Error(w, "bad service", http.StatusBadRequest)
			return
		}
		ts.mu.Lock()
		ts.issued++
		tok := "tok-" + string(rune('a'+ts.issued))
		scope := strings.Join(r.URL.Query()["scope"], " ")
		ts.valid[tok] = scope
		ts.scopes = append(ts.scopes, scope)
		ts.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL + "/token"
	return ts
}

func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	ts.valid = map[string]string{}
	ts.mu.Unlock()
}

func TestBearerAuth(t *testing.T) {
	host := startRegistry(t)
	ts := newTokenServer(t)
	g, gw := newGate(t, host)
	g.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v2/" {
			return false
		}
		repo := strings.TrimPrefix(r.URL.Path, "/v2/")
		repo = repo[:strings.Index(repo, "/")]
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			ts.mu.Lock()
			scope, valid := ts.valid[tok]
			ts.mu.Unlock()
			if valid && strings.HasPrefix(scope, "repository:"+repo+":") {
				return false
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+ts.url+`",service="test-registry",scope="repository:`+repo+`:pull"`)
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		return true
	}
	creds := func(string) Credentials { return Credentials{Username: "alice", Password: "secret"} }
	c := New(Options{Credentials: creds})
	ti := busyboxImage(t)
	push(t, c, gw+"/app:v1", ti)
	if len(ts.scopes) != 1 || ts.scopes[0] != "repository:app:pull,push" {
		t.Fatalf("token scopes %v, want one for repository:app:pull,push", ts.scopes)
	}

	named, _ := ParseReference(gw + "/app:v1")
	img, err := c.ResolveImage(context.Background(), named, ocispec.Platform{})
	if err != nil || img.ManifestDigest != ti.desc.Digest {
		t.Fatalf("pull: %v", err)
	}
	issued := ts.issued
	// Tokens revoked: the next request gets a 401 and a fresh token.
	ts.revokeAll()
	rc, err := c.FetchBlob(context.Background(), named, img.Manifest.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, ti.layers[0]) {
		t.Fatal("layer differs")
	}
	if ts.issued != issued+1 {
		t.Fatalf("issued %d tokens after revocation, want 1 more than %d", ts.issued, issued)
	}
	bad := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "alice", Password: "x"} }})
	if _, err := bad.ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil || !contains(err.Error(), "bad credentials") {
		t.Fatalf("bad credentials: %v", err)
	}
	if _, err := New(Options{}).ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil {
		t.Fatal("anonymous pull of a private repository succeeded")
	}
}

func TestRetries(t *testing.T) {
	host := startRegistry(t)
	g, gw := newGate(t, host)
	c := New(Options{Backoff: time.Millisecond})
	ti := busyboxImage(t)
	push(t, c, gw+"/app:v1", ti)

	var failures atomic.Int32
	failures.Store(3)
	g.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if failures.Add(-1) < 0 {
			return false
		}
		if failures.Load()%2 == 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return true
	}
	named, _ := ParseReference(gw + "/app:v1")
	if _, err := c.ResolveImage(context.Background(), named, ocispec.Platform{}); err != nil {
		t.Fatalf("after 3 transient failures: %v", err)
	}
	failures.Store(100)
	if _, err := c.ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil || !contains(err.Error(), "503") && !contains(err.Error(), "429") {
		t.Fatalf("with a registry that keeps failing: %v", err)
	}
}

// TestResume breaks the layer download twice mid-way; the client picks up
// where it stopped with Range requests.
func TestResume(t *testing.T) {
	host := startRegistry(t)
	g, gw := newGate(t, host)
	c := New(Options{Backoff: time.Millisecond})
	ti := busyboxImage(t)
	push(t, c, gw+"/app:v1", ti)
	blobPath := "/v2/app/blobs/" + digest.FromBytes(ti.layers[0]).String()

	var mu sync.Mutex
	var ranges []string
	breaks := 2
	g.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != blobPath {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		ranges = append(ranges, r.Header.Get("Range"))
		if breaks == 0 {
			return false
		}
		breaks--
		// Send the headers and part of the body, then cut the connection.
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			start = atoiPrefix(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(len(ti.layers[0])-1)+"/"+itoa(len(ti.layers[0])))
		}
		rest := ti.layers[0][start:]
		w.Header().Set("Content-Length", itoa(len(rest)))
		if start > 0 {
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(rest[:len(rest)/3])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		return true
	}
	named, _ := ParseReference(gw + "/app:v1")
	rc, err := c.FetchBlob(context.Background(), named, ocispec.Descriptor{Digest: digest.FromBytes(ti.layers[0]), Size: int64(len(ti.layers[0]))})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, ti.layers[0]) {
		t.Fatalf("resumed download: %d bytes, want %d identical", len(got), len(ti.layers[0]))
	}
	if len(ranges) != 3 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[2] <= ranges[1] && len(ranges[2]) <= len(ranges[1]) {
		t.Fatalf("Range headers %q, want none, then two increasing offsets", ranges)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoiPrefix(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	named, _ := ParseReference(addr + "/x:v1")
	start := time.Now()
	_, err = New(Options{}).ResolveImage(context.Background(), named, ocispec.Platform{})
	want := `Get "http://` + addr + `/v2/x/manifests/v1": dial tcp ` + addr + `: connect: connection refused`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a refused connection took %v: it must not be retried", d)
	}
	named, _ = ParseReference("registry.invalid/x:v1")
	start = time.Now()
	if _, err = New(Options{}).ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil || !strings.Contains(err.Error(), "registry.invalid") {
		t.Fatalf("unresolvable host: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("an unresolvable host took %v: it must not be retried", d)
	}
}

// TestTags lists tags from the registry, and one per page through a gate
// that paginates with Link headers as newer registries do.
func TestTags(t *testing.T) {
	host := startRegistry(t)
	c := New(Options{})
	ti := busyboxImage(t)
	for _, tag := range []string{"b", "a", "c"} {
		push(t, c, host+"/app:"+tag, ti)
	}
	named, _ := ParseReference(host + "/app")
	tags, err := c.Tags(context.Background(), named)
	sort.Strings(tags)
	if err != nil || strings.Join(tags, ",") != "a,b,c" {
		t.Fatalf("Tags: %v, %v; want a,b,c", tags, err)
	}
	missing, _ := ParseReference(host + "/nothing")
	if _, err := c.Tags(context.Background(), missing); !errdefs.IsNotFound(err) {
		t.Fatalf("tags of a missing repository: %v", err)
	}

	g, gw := newGate(t, host)
	next := map[string]string{"": "a", "a": "b", "b": "c"}
	g.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			return false
		}
		last := r.URL.Query().Get("last")
		tag := next[last]
		if _, more := next[tag]; more {
			w.Header().Set("Link", `</v2/app/tags/list?n=1&last=`+tag+`>; rel="next"`)
		}
		json.NewEncoder(w).Encode(map[string]any{"name": "app", "tags": []string{tag}})
		return true
	}
	paged, _ := ParseReference(gw + "/app")
	if tags, err := c.Tags(context.Background(), paged); err != nil || strings.Join(tags, ",") != "a,b,c" {
		t.Fatalf("paginated Tags: %v, %v; want a,b,c", tags, err)
	}
}
