package integration

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	regclient "berth/internal/registry/client"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushFreshImage uploads to ref an image the daemon cannot know: two
// layers of random bytes, gzipped at the best compression (not what berth
// would produce), under a Docker schema2 manifest. It returns the
// manifest digest.
func pushFreshImage(t *testing.T, ref string) digest.Digest {
	t.Helper()
	var layers [][]byte
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := range 2 {
		noise := make([]byte, 64<<10)
		rand.Read(noise)
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		name := []string{"base", "top"}[i]
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(noise)), ModTime: time.Unix(0, 0)})
		tw.Write(noise)
		tw.Close()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(tb.Bytes())
		zw.Close()
		layers = append(layers, gz.Bytes())
		diffIDs = append(diffIDs, digest.FromBytes(tb.Bytes()))
		descs = append(descs, ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
			Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())})
	}
	config, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:   ocispec.ImageConfig{Cmd: []string{"/top"}},
	})
	manifest, _ := json.MarshalIndent(map[string]any{ // indented: not the store's canonical form
		"schemaVersion": 2,
		"mediaType":     regclient.MediaTypeDockerManifest,
		"config":        ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(config), Size: int64(len(config))},
		"layers":        descs,
	}, "", "   ")
	return pushSchema2(t, ref, config, layers, manifest)
}

// registryManifest fetches ref's manifest from a plain-HTTP registry.
func registryManifest(t *testing.T, host, repo, ref string) (digest.Digest, ocispec.Manifest) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest+", "+regclient.MediaTypeDockerManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s/%s:%s: %s %s", host, repo, ref, resp.Status, raw)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(raw), m
}

// TestPushBackKeepsDigest: an image pulled from registry A, tagged for
// registry B and pushed, has the same manifest digest on B as on A.
func TestPushBackKeepsDigest(t *testing.T) {
	e := daemonEnv(t)
	a, b := startPlainRegistry(t, e), startPlainRegistry(t, e)
	src, dst := a.addr+"/pb/app:v1", b.addr+"/moved/app:v2"
	t.Cleanup(func() { e.berth(t, "rmi", src, dst) })
	want := pushFreshImage(t, src)

	r := must(t, e.berth(t, "pull", src))
	wantAll(t, "pull", r.stdout, "Digest: "+want.String()+"\n")
	must(t, e.berth(t, "tag", src, dst))
	r = must(t, e.berth(t, "push", dst))
	wantAll(t, "push", r.stdout, "v2: digest: "+want.String()+" ")
	if got, _ := registryManifest(t, b.addr, "moved/app", "v2"); got != want {
		t.Errorf("B's manifest digest %s, A's %s", got, want)
	}
	// and into another repository of A: mounted, same digest
	other := a.addr + "/pb/copy:v1"
	t.Cleanup(func() { e.berth(t, "rmi", other) })
	must(t, e.berth(t, "tag", src, other))
	r = must(t, e.berth(t, "push", other))
	wantAll(t, "push to A", r.stdout, "Mounted from pb/app", "v1: digest: "+want.String()+" ")
}

// TestPushBackLinkedLayers: a pulled image whose base layer the daemon
// had already (loaded from a tar, so that blob was never downloaded) still
// goes back unchanged where the registry has that blob; elsewhere it goes
// with a rebuilt manifest, and the same image ID.
func TestPushBackLinkedLayers(t *testing.T) {
	e := daemonEnv(t)
	a, b := startPlainRegistry(t, e), startPlainRegistry(t, e)
	src, copyA, copyB := a.addr+"/pl/app:v1", a.addr+"/pl/copy:v1", b.addr+"/pl/app:v1"
	t.Cleanup(func() { e.berth(t, "rmi", src, copyA, copyB) })
	want := pushBusybox(t, src)
	r := must(t, e.berth(t, "pull", src))
	wantAll(t, "pull", r.stdout, ": Already exists\n", "Digest: "+want.String()+"\n")
	id := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", src)).stdout)

	must(t, e.berth(t, "tag", src, copyA))
	r = must(t, e.berth(t, "push", copyA))
	wantAll(t, "push to another repository of A", r.stdout, "Mounted from pl/app", "v1: digest: "+want.String()+" ")

	must(t, e.berth(t, "tag", src, copyB))
	r = must(t, e.berth(t, "push", copyB))
	got, _ := registryManifest(t, b.addr, "pl/app", "v1")
	if got == want {
		t.Errorf("B got A's manifest %s though it lacks a layer berth does not store", got)
	}
	must(t, e.berth(t, "rmi", copyB))
	must(t, e.berth(t, "pull", copyB))
	if got := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", copyB)).stdout); got != id {
		t.Errorf("image pulled back from B is %s, want %s", got, id)
	}
}

// TestPushCompressesLayers: layers stored uncompressed (the fixtures are
// loaded from plain tars) go out gzipped, under gzip media types; the
// second push finds them by the remembered digest, and another registry
// gets the same bytes (the compression is deterministic).
func TestPushCompressesLayers(t *testing.T) {
	e := daemonEnv(t)
	r1, r2 := startPlainRegistry(t, e), startPlainRegistry(t, e)
	ref1, ref2 := r1.addr+"/gz/busybox:v1", r2.addr+"/gz/busybox:v1"
	id := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", "busybox")).stdout)
	t.Cleanup(func() { e.berth(t, "rmi", ref1, ref2) })
	must(t, e.berth(t, "tag", "busybox", ref1))
	r := must(t, e.berth(t, "push", ref1))
	wantAll(t, "push", r.stdout, ": Pushed\n")
	d1, m := registryManifest(t, r1.addr, "gz/busybox", "v1")
	for _, l := range m.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("layer %s pushed as %s, want gzip", l.Digest, l.MediaType)
		}
		resp, err := http.Get("http://" + r1.addr + "/v2/gz/busybox/blobs/" + l.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(blob) < 2 || blob[0] != 0x1f || blob[1] != 0x8b || digest.FromBytes(blob) != l.Digest || int64(len(blob)) != l.Size {
			t.Errorf("layer blob %s: %d bytes, not the gzip stream the manifest lists", l.Digest, len(blob))
		}
	}

	r = must(t, e.berth(t, "push", ref1))
	wantAll(t, "second push", r.stdout, ": Layer already exists\n", "v1: digest: "+d1.String())
	if strings.Contains(r.stdout, ": Pushed") {
		t.Errorf("second push compressed and uploaded again:\n%s", r.stdout)
	}

	must(t, e.berth(t, "tag", "busybox", ref2))
	r = must(t, e.berth(t, "push", ref2))
	wantAll(t, "push to a second registry", r.stdout, ": Pushed\n", "v1: digest: "+d1.String())

	must(t, e.berth(t, "rmi", ref2))
	must(t, e.berth(t, "pull", ref2))
	if got := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", ref2)).stdout); got != id {
		t.Errorf("pulled back image %s, pushed %s", got, id)
	}
}
