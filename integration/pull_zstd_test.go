package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"berth/internal/fixture"
	regclient "berth/internal/registry/client"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// uploadBlob pushes b with the client's upload code.
func uploadBlob(t *testing.T, c *regclient.Client, named reference.Named, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if _, err := c.UploadBlob(context.Background(), named, d, bytes.NewReader(b), regclient.UploadOptions{}); err != nil {
		t.Fatalf("upload %s: %v", d.Digest, err)
	}
	return d
}

// TestPullZstdMultiArch pushes an OCI index with a zstd-compressed image
// for this machine's architecture and a decoy for another into berth's
// registry; the daemon picks this architecture's image, unpacks the zstd
// layers and runs it.
func TestPullZstdMultiArch(t *testing.T) {
	e := daemonEnv(t)
	host := freeAddr(t)
	runRegistry(t, host, e.bin, "registry", "serve", "--addr", host, "--root", t.TempDir(), "--log-level", "error")
	ref := host + "/zstd/busybox:multi"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })

	// The busybox layer and a marker layer, both zstd.
	cfg, base, err := fixture.BusyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	var top bytes.Buffer
	tw := tar.NewWriter(&top)
	tw.WriteHeader(&tar.Header{Name: "arch", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(runtime.GOARCH) + 1), ModTime: time.Unix(0, 0)})
	tw.Write([]byte(runtime.GOARCH + "\n"))
	tw.Close()
	raw := [][]byte{base, top.Bytes()}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}

	c := regclient.New(regclient.Options{})
	named, err := regclient.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	var layers []ocispec.Descriptor
	cfg.RootFS.DiffIDs = nil
	for _, l := range raw {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		layers = append(layers, uploadBlob(t, c, named, ocispec.MediaTypeImageLayerZstd, enc.EncodeAll(l, nil)))
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	var entries []ocispec.Descriptor
	for _, arch := range []string{other, runtime.GOARCH} {
		cfg.Architecture, cfg.OS = arch, "linux"
		config, _ := json.Marshal(cfg)
		cd := uploadBlob(t, c, named, ocispec.MediaTypeImageConfig, config)
		manifest, _ := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cd,
			Layers:    layers,
		})
		byDigest, _ := regclient.ParseReference(host + "/zstd/busybox@" + digest.FromBytes(manifest).String())
		d, err := c.PushManifest(context.Background(), byDigest, ocispec.MediaTypeImageManifest, manifest)
		if err != nil {
			t.Fatalf("push %s manifest: %v", arch, err)
		}
		entries = append(entries, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(manifest)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
	}
	index, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries})
	indexDigest, err := c.PushManifest(context.Background(), named, ocispec.MediaTypeImageIndex, index)
	if err != nil {
		t.Fatalf("push index: %v", err)
	}

	r := must(t, e.docker(t, "pull", ref))
	if !strings.Contains(r.stdout, "Digest: "+indexDigest.String()+"\n") {
		t.Errorf("docker pull output lacks the index digest %s:\n%s", indexDigest, r.stdout)
	}
	r = must(t, e.docker(t, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", ref))
	if got := strings.TrimSpace(r.stdout); got != "linux/"+runtime.GOARCH {
		t.Errorf("pulled image platform %s, want linux/%s", got, runtime.GOARCH)
	}
	r = must(t, e.docker(t, "run", "--rm", "--network", "none", ref, "sh", "-c", "echo zstd-$((6*7)); cat /arch"))
	if r.stdout != "zstd-42\n"+runtime.GOARCH+"\n" {
		t.Errorf("run of the zstd image: %q", r.stdout)
	}
}
