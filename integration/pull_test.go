package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	const bin = "/usr/bin/docker-registry"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not installed (apt-get install docker-registry)", bin)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
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
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s did not start: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushBusybox uploads the busybox fixture plus a small layer of its own
// (/pulled holding ref), both gzipped, under ref as a Docker schema2
// manifest and returns the manifest digest. The second layer makes the
// image new to the daemon, which has the plain busybox loaded already.
func pushBusybox(t *testing.T, ref string) digest.Digest {
	t.Helper()
	var buf bytes.Buffer
	if err := fixture.OCILayout(&buf, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var idx ocispec.Index
	var m ocispec.Manifest
	json.Unmarshal(files["index.json"], &idx)
	json.Unmarshal(files["blobs/sha256/"+idx.Manifests[0].Digest.Encoded()], &m)
	var cfg ocispec.Image
	json.Unmarshal(files["blobs/sha256/"+m.Config.Digest.Encoded()], &cfg)
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
	raw := [][]byte{files["blobs/sha256/"+m.Layers[0].Digest.Encoded()], top.Bytes()}
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
