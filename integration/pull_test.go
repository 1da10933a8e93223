package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"berth/internal/fixture"
	regclient "berth/internal/registry/client"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// startRegistry runs Debian's distribution registry (docker-registry) on a
// free loopback port with a temp storage root; it returns host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	return runDistribution(t, false)
}

// pushBusybox uploads the busybox fixture plus a small layer of its own
// (/pulled holding ref), both gzipped, under ref as a Docker schema2
// manifest and returns the manifest digest. The second layer makes the
// image new to the daemon, which has the plain busybox loaded already.
func pushBusybox(t *testing.T, ref string) digest.Digest {
	t.Helper()
	cfg, base, err := fixture.BusyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	gzipped := func(b []byte) []byte {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(b)
		zw.Close()
		return gz.Bytes()
	}
	var top bytes.Buffer
	tw := tar.NewWriter(&top)
	tw.WriteHeader(&tar.Header{Name: "pulled", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(ref) + 1), ModTime: time.Unix(0, 0)})
	tw.Write([]byte(ref + "\n"))
	tw.Close()
	raw := [][]byte{base, top.Bytes()}
	cfg.RootFS.DiffIDs = nil
	var layers [][]byte
	var descs []ocispec.Descriptor
	for _, l := range raw {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		g := gzipped(l)
		layers = append(layers, g)
		descs = append(descs, ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromBytes(g), Size: int64(len(g))})
	}
	cfg.History = append(cfg.History, ocispec.History{CreatedBy: "COPY pulled /pulled"})
	config, _ := json.Marshal(cfg)
	manifest, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: regclient.MediaTypeDockerManifest,
		Config:    ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    descs,
	})
	return pushSchema2(t, ref, config, layers, manifest)
}

// pushSchema2 uploads config and layers as blobs to ref's plain-HTTP
// registry, then manifest (a Docker schema2 manifest naming them) under
// ref, and returns the manifest digest.
func pushSchema2(t *testing.T, ref string, config []byte, layers [][]byte, manifest []byte) digest.Digest {
	t.Helper()
	c := regclient.New(regclient.Options{})
	named, err := regclient.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range append([][]byte{config}, layers...) {
		if err := c.PushBlob(ctx, named, ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}, b); err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.PushManifest(ctx, named, regclient.MediaTypeDockerManifest, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPullFromRegistry(t *testing.T) {
	e := daemonEnv(t)
	host := startRegistry(t)
	ref := host + "/busybox:latest"
	d := pushBusybox(t, ref)
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })

	r := must(t, e.docker(t, "pull", host+"/busybox"))
	for _, want := range []string{
		"Using default tag: latest\n",
		"latest: Pulling from busybox\n",
		": Already exists\n", // the busybox layer, loaded by the harness
		": Pulling fs layer\n",
		": Download complete\n",
		": Pull complete\n",
		"Digest: " + d.String() + "\n",
		"Status: Downloaded newer image for " + ref + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.HasSuffix(r.stdout, "\n"+ref+"\n") {
		t.Errorf("docker pull output does not end with the reference:\n%s", r.stdout)
	}
	r = must(t, e.docker(t, "pull", ref))
	if !strings.Contains(r.stdout, "Status: Image is up to date for "+ref+"\n") || strings.Contains(r.stdout, "Pull complete") {
		t.Errorf("second pull:\n%s", r.stdout)
	}
	r = must(t, e.docker(t, "image", "inspect", "-f", "{{json .RepoTags}} {{json .RepoDigests}}", ref))
	if want := fmt.Sprintf(`["%s"] ["%s/busybox@%s"]`, ref, host, d); strings.TrimSpace(r.stdout) != want {
		t.Errorf("inspect: %s, want %s", r.stdout, want)
	}
	r = must(t, e.docker(t, "run", "--rm", "--network", "none", ref, "sh", "-c", "echo pulled-$((6*7)); cat /pulled"))
	if r.stdout != "pulled-42\n"+ref+"\n" {
		t.Errorf("run of the pulled image: %q", r.stdout)
	}

	r = e.docker(t, "pull", host+"/busybox:nope")
	want := "Error response from daemon: manifest for " + host + "/busybox:nope not found: manifest unknown: manifest unknown"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("pull of a missing tag: %s\nwant %q", r, want)
	}
	r = e.docker(t, "pull", "127.0.0.1:1/nothing:here")
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("pull from a closed port: %s", r)
	}
}

// TestRunPullsMissingImage: `run` of an image that is not there pulls it,
// with both CLIs, and `berth pull` prints docker's output.
func TestRunPullsMissingImage(t *testing.T) {
	e := daemonEnv(t)
	host := startRegistry(t)
	ref := host + "/pulled/app:v1"
	pushBusybox(t, ref)
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })

	r := must(t, e.docker(t, "run", "--rm", "--network", "none", ref, "echo", "ran"))
	if r.stdout != "ran\n" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("docker run of a missing image: %s", r)
	}
	must(t, e.docker(t, "rmi", ref))

	r = must(t, e.berth(t, "pull", ref))
	if !strings.Contains(r.stdout, "v1: Pulling from pulled/app\n") || !strings.Contains(r.stdout, "Status: Downloaded newer image for "+ref+"\n") {
		t.Errorf("berth pull:\n%s", r.stdout)
	}
	r = must(t, e.berth(t, "run", "--rm", "--network", "none", ref, "cat", "/etc/passwd"))
	if !strings.HasPrefix(r.stdout, "root:") {
		t.Errorf("berth run of the pulled image: %s", r)
	}

	// pull -a: every tag of the repository.
	ref2 := host + "/pulled/app:v2"
	pushBusybox(t, ref2)
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref2) })
	r = must(t, e.docker(t, "pull", "-a", host+"/pulled/app"))
	for _, want := range []string{"v1: Pulling from pulled/app\n", "v2: Pulling from pulled/app\n", "Status: Downloaded newer image for " + host + "/pulled/app\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docker pull -a output lacks %q:\n%s", want, r.stdout)
		}
	}
	must(t, e.docker(t, "image", "inspect", ref2))
}
