package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pulled builds an AddPulled argument from a test image whose blobs are
// served from memory; opened counts the layers fetched.
func pulled(ti testImage, refs []string, opened *int, mu *sync.Mutex) Pulled {
	cfg, _ := ti.config()
	p := Pulled{Config: cfg, Refs: refs}
	for _, b := range ti.blobs() {
		b := b
		mt := ocispec.MediaTypeImageLayer
		if ti.compress != nil {
			mt = ocispec.MediaTypeImageLayerGzip
		}
		p.Layers = append(p.Layers, PulledLayer{
			Blob: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))},
			Open: func(context.Context) (io.ReadCloser, error) {
				mu.Lock()
				*opened++
				mu.Unlock()
				return io.NopCloser(bytes.NewReader(b)), nil
			},
		})
	}
	return p
}

func TestAddPulled(t *testing.T) {
	s, root := openStore(t)
	before := tree(t, root)
	ti := testImage{
		layers: [][]byte{
			layerTar(t, dirEnt("etc/"), reg("etc/hostname", "base\n")),
			layerTar(t, reg("etc/hostname", "top\n"), reg("hello", "world")),
		},
		compress: gzipBytes,
		cmd:      "sh",
	}
	var mu sync.Mutex
	var opened int
	var events []string
	p := pulled(ti, []string{"127.0.0.1:5000/x:v1", "127.0.0.1:5000/x@sha256:" + strings.Repeat("a", 64)}, &opened, &mu)
	p.Progress = func(i int, ev PullEvent) {
		mu.Lock()
		events = append(events, string(rune('0'+i))+string(rune('a'+int(ev))))
		mu.Unlock()
	}

	// A layer whose bytes do not match the manifest: nothing is left.
	bad := pulled(ti, []string{"127.0.0.1:5000/x:v1"}, &opened, &mu)
	bad.Layers[1].Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gzipBytes(layerTar(t, reg("evil", "x"))))), nil
	}
	if _, err := s.AddPulled(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("AddPulled with a corrupt layer: %v, want a mismatch error", err)
	}
	if got := tree(t, root); got != before {
		t.Fatalf("a failed pull left files:\n%s\nwant:\n%s", got, before)
	}
	if ids := imageIDs(t, s); ids != "" {
		t.Fatalf("a failed pull left images: %s", ids)
	}

	opened = 0
	img, err := s.AddPulled(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if opened != 2 || len(img.Layers) != 2 {
		t.Fatalf("opened %d layers, image has %d; want 2 and 2", opened, len(img.Layers))
	}
	if len(events) != 4 || !strings.Contains(strings.Join(events, ","), "0b") || !strings.Contains(strings.Join(events, ","), "1c") {
		t.Fatalf("progress events %v, want fetching and unpacked for both layers", events)
	}
	got, err := s.Resolve("127.0.0.1:5000/x:v1")
	if err != nil || got.ID != img.ID {
		t.Fatalf("Resolve tag: %v, %v", got, err)
	}
	if len(got.RepoDigests) != 1 {
		t.Fatalf("RepoDigests %v, want the digest ref", got.RepoDigests)
	}
	hello, err := os.ReadFile(filepath.Join(s.snapshots.DiffPath(img.Layers[1].ChainID), "hello"))
	if err != nil || string(hello) != "world" {
		t.Fatalf("top layer content %q, %v", hello, err)
	}
	if !s.content.Has(p.Layers[0].Blob.Digest) {
		t.Fatal("layer blob not stored")
	}

	// Pulling again under another tag fetches nothing.
	opened, events = 0, nil
	p.Refs = []string{"127.0.0.1:5000/x:v2"}
	if _, err := s.AddPulled(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if opened != 0 || strings.Join(events, ",") != "0a,1a" {
		t.Fatalf("second pull opened %d layers, events %v; want 0 and both existing", opened, events)
	}

	// The store reopens to the same images.
	s2, err := Open(root, s.db)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := imageIDs(t, s), imageIDs(t, s2); a != b {
		t.Fatalf("after reopen: %s, want %s", b, a)
	}
}

func TestAddPulledCancelled(t *testing.T) {
	s, root := openStore(t)
	before := tree(t, root)
	ti := testImage{layers: [][]byte{layerTar(t, reg("a", "1")), layerTar(t, reg("b", "2"))}, cmd: "sh"}
	var mu sync.Mutex
	var opened int
	p := pulled(ti, []string{"x:v1"}, &opened, &mu)
	ctx, cancel := context.WithCancel(context.Background())
	p.Layers[0].Open = func(context.Context) (io.ReadCloser, error) {
		cancel()
		return nil, context.Canceled
	}
	if _, err := s.AddPulled(ctx, p); err == nil {
		t.Fatal("a cancelled pull succeeded")
	}
	if got := tree(t, root); got != before {
		t.Fatalf("a cancelled pull left files:\n%s", got)
	}
	if _, err := s.Resolve("x:v1"); err == nil {
		t.Fatal("a cancelled pull left a tag")
	}
}
