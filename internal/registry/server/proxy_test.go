package server

import (
	"net/http"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseChallenge(t *testing.T) {
	got := parseChallenge(`Bearer realm="https://r:5000/token",service="r:5000",scope="repository:a/b:pull,push",error="insufficient_scope"`)
	want := map[string]string{"realm": "https://r:5000/token", "service": "r:5000", "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// proxyPair is an upstream registry and a pull-through cache of it, both
// on loopback.
func proxyPair(t *testing.T, upstream *testRegistry, cfg ProxyConfig) *testRegistry {
	t.Helper()
	cfg.RemoteURL = upstream.http.URL
	return newOptRegistry(t, func(string) []Option { return []Option{WithProxy(cfg)} })
}

func TestProxyPullThrough(t *testing.T) {
	up := newTestRegistry(t, "")
	im := up.pushImage("lib/app", "v1", nil)
	cache := proxyPair(t, up, ProxyConfig{})
	accept := map[string]string{"Accept": ocispec.MediaTypeImageManifest}

	resp, body := cache.do("GET", "/v2/lib/app/manifests/v1", accept, nil)
	cache.expect(resp, body, http.StatusOK)
	if string(body) != string(im.manifest) || resp.Header.Get("Docker-Content-Digest") != im.desc.Digest.String() {
		t.Fatalf("proxied manifest differs (digest %s)", resp.Header.Get("Docker-Content-Digest"))
	}
	for _, b := range [][]byte{im.config, im.layer} {
		d := digestOf(b)
		resp, body := cache.do("HEAD", "/v2/lib/app/blobs/"+d, nil, nil)
		cache.expect(resp, body, http.StatusOK)
		resp, body = cache.do("GET", "/v2/lib/app/blobs/"+d, nil, nil)
		cache.expect(resp, body, http.StatusOK)
		if string(body) != string(b) {
			t.Fatalf("proxied blob %s differs", d)
		}
	}
	// Misses upstream stay misses.
	resp, body = cache.do("GET", "/v2/lib/app/manifests/nope", accept, nil)
	cache.expect(resp, body, http.StatusNotFound)
	if c := errorCode(t, body); c != "MANIFEST_UNKNOWN" {
		t.Errorf("missing tag: code %s", c)
	}
	// A cache takes no pushes.
	resp, body = cache.do("POST", "/v2/lib/app/blobs/uploads/", nil, nil)
	cache.expect(resp, body, http.StatusMethodNotAllowed)

	// A tag moved upstream is followed.
	im2 := up.pushImage("lib/app", "v1", nil)
	resp, body = cache.do("GET", "/v2/lib/app/manifests/v1", accept, nil)
	cache.expect(resp, body, http.StatusOK)
	if resp.Header.Get("Docker-Content-Digest") != im2.desc.Digest.String() {
		t.Fatalf("moved tag: cache serves %s, upstream has %s", resp.Header.Get("Docker-Content-Digest"), im2.desc.Digest)
	}
	im = im2
	resp, body = cache.do("GET", "/v2/lib/app/blobs/"+digestOf(im.layer), nil, nil)
	cache.expect(resp, body, http.StatusOK)

	// Everything fetched is stored: the cache serves it with the upstream gone.
	up.stop()
	for _, p := range []string{"/v2/lib/app/manifests/v1", "/v2/lib/app/manifests/" + im.desc.Digest.String(), "/v2/lib/app/blobs/" + digestOf(im.layer)} {
		resp, body := cache.do("GET", p, accept, nil)
		cache.expect(resp, body, http.StatusOK)
	}
	resp, body = cache.do("GET", "/v2/lib/app/manifests/v2", accept, nil)
	cache.expect(resp, body, http.StatusBadGateway)
}

// TestProxyTokenUpstream pulls through from an upstream that wants tokens.
func TestProxyTokenUpstream(t *testing.T) {
	up := tokenRegistry(t)
	resp, _ := up.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
	tok, _ := fetchToken(t, up, resp.Header.Get("WWW-Authenticate"), basic("alice", "secret"))
	orig := http.DefaultClient.Transport
	http.DefaultClient.Transport = headerTransport{"Authorization", "Bearer " + tok}
	im := up.pushImage("alice/app", "v1", nil)
	http.DefaultClient.Transport = orig

	cache := proxyPair(t, up, ProxyConfig{Username: "bob", Password: "hunter2", Client: &http.Client{}})
	resp, body := cache.do("GET", "/v2/alice/app/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	cache.expect(resp, body, http.StatusOK)
	resp, body = cache.do("GET", "/v2/alice/app/blobs/"+digestOf(im.layer), nil, nil)
	cache.expect(resp, body, http.StatusOK)
	if string(body) != string(im.layer) {
		t.Fatal("proxied layer differs")
	}
}
