package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
)

func TestParseMirror(t *testing.T) {
	good := map[string]mirror{
		"http://127.0.0.1:5001":     {host: "127.0.0.1:5001", scheme: "http"},
		"https://mirror.example/":   {host: "mirror.example", scheme: "https"},
		"https://mirror.example/v2": {host: "mirror.example", scheme: "https"},
		"mirror.example:5000":       {host: "mirror.example:5000"},
	}
	for in, want := range good {
		if got, err := parseMirror(in); err != nil || got != want {
			t.Errorf("parseMirror(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ftp://x", "https://x/some/path", "https://u:p@x", "x/y", "https://"} {
		if _, err := parseMirror(in); err == nil {
			t.Errorf("parseMirror(%q) accepted", in)
		}
	}
	if _, err := NewChecked(Options{Mirrors: map[string][]string{"docker.io": {"ftp://x"}}}); !errdefs.IsInvalidParameter(err) {
		t.Errorf("NewChecked with a bad mirror: %v, want invalid parameter", err)
	}
	c, err := NewChecked(Options{Mirrors: map[string][]string{"index.docker.io": {"https://m1"}, "127.0.0.1:5000": {"http://127.0.0.1:5001"}}})
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := ParseReference("busybox")
	if got := c.pullHosts(hub); len(got) != 2 || got[0] != "m1" || got[1] != hubEndpoint {
		t.Errorf("docker.io pull hosts %q", got)
	}
	if c.scheme("m1") != "https" || c.scheme("127.0.0.1:5001") != "http" {
		t.Errorf("mirror schemes: %s %s", c.scheme("m1"), c.scheme("127.0.0.1:5001"))
	}
}

// TestMirrorFallback: a pull goes to the mirror first; what the mirror
// lacks (404) or cannot serve (down) comes from the origin; pushes never
// go to the mirror.
func TestMirrorFallback(t *testing.T) {
	origin, mir := newFakeRegistry(t), newFakeRegistry(t)
	onlyOrigin := faultImage(t, tarOf(t, "a", "origin"))
	both := faultImage(t, tarOf(t, "b", "mirrored"))
	origin.put("origin", onlyOrigin)
	origin.put("both", both)
	mir.put("both", both)
	c := New(Options{Backoff: time.Millisecond, MaxAttempts: 2,
		Mirrors: map[string][]string{origin.host: {"http://" + mir.host}}})
	ctx := context.Background()
	s, _, _ := faultStore(t)

	if _, err := pullInto(ctx, c, s, origin.host+"/app:both"); err != nil {
		t.Fatalf("pull of a mirrored image: %v", err)
	}
	if n := origin.count("GET manifest") + origin.count("GET blob"); n != 0 {
		t.Errorf("the origin served %d requests for an image the mirror has", n)
	}
	if mir.count("GET blob") != 2 { // config and layer
		t.Errorf("the mirror served %d blobs, want 2", mir.count("GET blob"))
	}

	if _, err := pullInto(ctx, c, s, origin.host+"/app:origin"); err != nil {
		t.Fatalf("pull falling back to the origin: %v", err)
	}
	if origin.count("GET manifest") != 1 || origin.count("GET blob") != 2 {
		t.Errorf("origin served %d manifests and %d blobs, want 1 and 2", origin.count("GET manifest"), origin.count("GET blob"))
	}

	// A mirror that answers 500 to everything is passed over too.
	mir.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	named, _ := reference.ParseNormalizedNamed(origin.host + "/app:both")
	if _, err := c.Resolve(ctx, named); err != nil {
		t.Fatalf("resolve with a broken mirror: %v", err)
	}

	// Pushes go to the origin only.
	before := mir.count("PUT manifest")
	// The double does not store pushes: only where the PUT goes matters.
	c.PushManifest(ctx, named, MediaTypeDockerManifest, both.manifest)
	if mir.count("PUT manifest") != before || origin.count("PUT manifest") != 1 {
		t.Errorf("manifest PUTs: mirror %d, origin %d; want 0 and 1", mir.count("PUT manifest")-before, origin.count("PUT manifest"))
	}
}
