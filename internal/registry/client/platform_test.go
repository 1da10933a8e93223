package client

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestSelectPlatformVariants: an index with several amd64 (or arm)
// builds gives the plain machine the baseline build, whatever the order,
// and a machine that asks for a level the build for that level.
func TestSelectPlatformVariants(t *testing.T) {
	d := func(dg, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.Digest("sha256:" + dg), Platform: &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}}
	}
	for _, tc := range []struct {
		name string
		ms   []ocispec.Descriptor
		p    ocispec.Platform
		want string
	}{
		{"amd64 baseline after v3", []ocispec.Descriptor{d("v3", "amd64", "v3"), d("plain", "amd64", ""), d("a64", "arm64", "v8")},
			ocispec.Platform{OS: "linux", Architecture: "amd64"}, "plain"},
		{"amd64 v1 spelled out", []ocispec.Descriptor{d("v2", "amd64", "v2"), d("v1", "amd64", "v1")},
			ocispec.Platform{OS: "linux", Architecture: "amd64"}, "v1"},
		{"amd64 lowest level when no baseline", []ocispec.Descriptor{d("v3", "amd64", "v3"), d("v2", "amd64", "v2")},
			ocispec.Platform{OS: "linux", Architecture: "amd64"}, "v2"},
		{"amd64 v3 asked", []ocispec.Descriptor{d("plain", "amd64", ""), d("v3", "amd64", "v3")},
			ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, "v3"},
		{"arm64 without variant is v8", []ocispec.Descriptor{d("v9", "arm64", "v9"), d("v8", "arm64", "")},
			ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "v8"},
		{"arm v6 asked", []ocispec.Descriptor{d("v7", "arm", "v7"), d("v6", "arm", "v6")},
			ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "v6"},
		{"arm defaults to v7", []ocispec.Descriptor{d("v6", "arm", "v6"), d("v7", "arm", "v7")},
			ocispec.Platform{OS: "linux", Architecture: "arm"}, "v7"},
	} {
		got, ok := SelectPlatform(tc.ms, tc.p)
		if !ok || got.Digest.Encoded() != tc.want {
			t.Errorf("%s: got %s (%v), want %s", tc.name, got.Digest, ok, tc.want)
		}
	}
}

// TestInspect: Inspect answers an index's digest and its entries'
// platforms, and for a single manifest the platform of its config.
func TestInspect(t *testing.T) {
	host := startServer(t)
	c := New(Options{})
	cfg, layer := busyboxLayer(t)
	amd := makeImage(t, cfg, "amd64", layer)
	arm := makeImage(t, cfg, "arm64", layer)
	push(t, c, host+"/insp/one:amd", amd)
	push(t, c, host+"/insp/one:arm", arm)
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{amd.desc, arm.desc}})
	named, _ := ParseReference(host + "/insp/one:multi")
	ctx := context.Background()
	if _, err := c.PushManifest(ctx, named, ocispec.MediaTypeImageIndex, idx); err != nil {
		t.Fatal(err)
	}
	desc, plats, err := c.Inspect(ctx, named)
	if err != nil || desc.Digest != digest.FromBytes(idx) || desc.MediaType != ocispec.MediaTypeImageIndex || desc.Size != int64(len(idx)) {
		t.Fatalf("index: %+v %v", desc, err)
	}
	if len(plats) != 2 || plats[0].Architecture != "amd64" || plats[1].Architecture != "arm64" {
		t.Errorf("index platforms: %+v", plats)
	}
	single, _ := ParseReference(host + "/insp/one:arm")
	desc, plats, err = c.Inspect(ctx, single)
	if err != nil || desc.Digest != arm.desc.Digest || desc.MediaType != MediaTypeDockerManifest {
		t.Fatalf("manifest: %+v %v", desc, err)
	}
	if len(plats) != 1 || plats[0].OS != "linux" || plats[0].Architecture != "arm64" {
		t.Errorf("manifest platforms: %+v", plats)
	}
	missing, _ := ParseReference(host + "/insp/one:nosuch")
	if _, _, err := c.Inspect(ctx, missing); err == nil {
		t.Error("Inspect of a missing tag succeeded")
	}
}

// TestPlainHTTPOnlyWhereAllowed: loopback registries and the configured
// insecure ones are spoken to over HTTP, everything else over HTTPS, and a
// registry with a certs.d directory over HTTPS even on loopback.
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	certs := t.TempDir()
	if err := os.Mkdir(filepath.Join(certs, "127.0.0.1:5443"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := New(Options{CertsDirs: []string{certs}, InsecureRegistries: []string{"reg.internal:5000"}})
	for host, want := range map[string]string{
		"127.0.0.1:5000":       "http",
		"localhost:5000":       "http",
		"[::1]:5000":           "http",
		"127.0.0.1:5443":       "https",
		"reg.internal:5000":    "http",
		"reg.internal:5001":    "https",
		"registry-1.docker.io": "https",
		"10.1.2.3:5000":        "https",
	} {
		if got := c.scheme(host); got != want {
			t.Errorf("scheme(%s) = %s, want %s", host, got, want)
		}
	}
	if !isLoopback(net.JoinHostPort("::1", "80")) {
		t.Error("[::1]:80 is not loopback")
	}
}
