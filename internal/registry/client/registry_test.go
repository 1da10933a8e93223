package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"berth/internal/fixture"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const registryBinary = "/usr/bin/docker-registry"

// startRegistry runs Debian's distribution registry on a free loopback
// port with its storage in a temp dir and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	return startRegistryWith(t, "")
}

// startRegistryWith runs the registry with extra config under http:.
func startRegistryWith(t *testing.T, httpExtra string) string {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("%s not installed (apt-get install docker-registry): %v", registryBinary, err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, httpExtra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBinary, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s did not come up: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testImage is an image to push: config, gzip layers and the manifest.
type testImage struct {
	config   []byte
	layers   [][]byte // as pushed (gzip)
	manifest []byte
	desc     ocispec.Descriptor // of the manifest
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// busyboxLayer returns the busybox fixture's config and uncompressed layer,
// read out of its OCI layout.
func busyboxLayer(t testing.TB) (ocispec.Image, []byte) {
	t.Helper()
	cfg, layer, err := fixture.BusyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, layer
}

// busyboxImage is the busybox fixture as a one-layer image for this
// machine's architecture.
func busyboxImage(t testing.TB) testImage {
	t.Helper()
	cfg, layer := busyboxLayer(t)
	return makeImage(t, cfg, hostArch(), layer)
}

// makeImage builds a Docker schema2 image of the given uncompressed layers.
func makeImage(t testing.TB, cfg ocispec.Image, arch string, layers ...[]byte) testImage {
	t.Helper()
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.RootFS = ocispec.RootFS{Type: "layers"}
	ti := testImage{}
	var descs []ocispec.Descriptor
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		g := gz(l)
		ti.layers = append(ti.layers, g)
		descs = append(descs, ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromBytes(g), Size: int64(len(g))})
	}
	ti.config, _ = json.Marshal(cfg)
	ti.manifest, _ = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: MediaTypeDockerManifest,
		Config:    ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(ti.config), Size: int64(len(ti.config))},
		Layers:    descs,
	})
	ti.desc = ocispec.Descriptor{MediaType: MediaTypeDockerManifest, Digest: digest.FromBytes(ti.manifest), Size: int64(len(ti.manifest)),
		Platform: &ocispec.Platform{OS: "linux", Architecture: arch}}
	return ti
}

// push uploads ti's blobs and its manifest under ref.
func push(t testing.TB, c *Client, ref string, ti testImage) {
	t.Helper()
	ctx := context.Background()
	named, err := ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	blobs := append([][]byte{ti.config}, ti.layers...)
	for _, b := range blobs {
		if err := c.PushBlob(ctx, named, ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PushManifest(ctx, named, MediaTypeDockerManifest, ti.manifest); err != nil {
		t.Fatal(err)
	}
}

func hostArch() string { return runtime.GOARCH }

func readAll(t testing.TB, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
