// Command registryload feeds bench/registry.sh: it pushes a deterministic
// big image into a registry and then loads the registry with concurrent
// blob and manifest GETs, reporting throughput and manifest latency.
//
//	registryload push -registry 127.0.0.1:5000 -repo bench/big:v1 [-layers 4 -mb 50 -seed 1]
//	registryload load -registry 127.0.0.1:5000 -repo bench/big:v1 [-c 8 -blobs 32 -manifests 2000]
//
// Loopback only: it refuses a registry that is not on 127.0.0.1/localhost.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"berth/internal/registry/client"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: registryload push|load [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	registry := fs.String("registry", "127.0.0.1:5000", "registry host:port (loopback only)")
	repo := fs.String("repo", "bench/big:v1", "repository:tag")
	layers := fs.Int("layers", 4, "push: number of layers")
	mb := fs.Int("mb", 50, "push: MiB of random content per layer")
	seed := fs.Uint64("seed", 1, "push: content seed")
	conc := fs.Int("c", 8, "load: concurrent clients")
	blobs := fs.Int("blobs", 32, "load: layer GETs in all")
	manifests := fs.Int("manifests", 2000, "load: manifest GETs in all")
	fs.Parse(os.Args[2:])
	host, _, err := net.SplitHostPort(*registry)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		fmt.Fprintf(os.Stderr, "registryload: %q is not a loopback registry\n", *registry)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "push":
		err = push(*registry, *repo, *layers, *mb, *seed)
	case "load":
		err = load(*registry, *repo, *conc, *blobs, *manifests)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registryload:", err)
		os.Exit(1)
	}
}

// layer returns a gzip layer holding one file of seeded random bytes
// (which gzip cannot shrink) and the digest of its uncompressed tar.
func layer(i, mb int, seed uint64) (gzBlob []byte, diffID digest.Digest) {
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(i)}))
	data := make([]byte, mb<<20)
	for j := 0; j+8 <= len(data); j += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			data[j+k] = byte(v >> (8 * k))
		}
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data%d.bin", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
	tw.Write(data)
	tw.Close()
	diffID = digest.FromBytes(tarBuf.Bytes())
	var gzBuf bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gzBuf, gzip.BestSpeed)
	gw.Write(tarBuf.Bytes())
	gw.Close()
	return gzBuf.Bytes(), diffID
}

func push(registry, repo string, n, mb int, seed uint64) error {
	ctx := context.Background()
	named, err := client.ParseReference(registry + "/" + repo)
	if err != nil {
		return err
	}
	c := client.New(client.Options{})
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers"},
		Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}
	var descs []ocispec.Descriptor
	for i := 0; i < n; i++ {
		b, diffID := layer(i, mb, seed)
		d := ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := c.PushBlob(ctx, named, d, b); err != nil {
			return fmt.Errorf("push layer %d: %w", i, err)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		descs = append(descs, d)
	}
	cfgRaw, _ := json.Marshal(cfg)
	cd := ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(cfgRaw), Size: int64(len(cfgRaw))}
	if err := c.PushBlob(ctx, named, cd, cfgRaw); err != nil {
		return fmt.Errorf("push config: %w", err)
	}
	raw, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: client.MediaTypeDockerManifest, Config: cd, Layers: descs})
	d, err := c.PushManifest(ctx, named, client.MediaTypeDockerManifest, raw)
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func load(registry, repo string, conc, nBlobs, nManifests int) error {
	name, tag, _ := strings.Cut(repo, ":")
	if tag == "" {
		tag = "latest"
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}}
	base := "http://" + registry + "/v2/" + name
	get := func(u string) (int64, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", client.MediaTypeDockerManifest+", "+ocispec.MediaTypeImageManifest)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return n, err
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/manifests/"+tag, nil)
	req.Header.Set("Accept", client.MediaTypeDockerManifest+", "+ocispec.MediaTypeImageManifest)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	var m ocispec.Manifest
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil || resp.StatusCode != http.StatusOK || len(m.Layers) == 0 {
		return fmt.Errorf("manifest of %s: %s, %v: %.300s", repo, resp.Status, err, raw)
	}

	// Blobs: every client takes the next layer GET until nBlobs are done.
	var next atomic.Int64
	var bytesRead atomic.Int64
	var firstErr error
	var mu sync.Mutex
	run := func(total int, op func(i int) error) time.Duration {
		next.Store(0)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					if err := op(i); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	blobTime := run(nBlobs, func(i int) error {
		n, err := get(base + "/blobs/" + m.Layers[i%len(m.Layers)].Digest.String())
		bytesRead.Add(n)
		return err
	})
	if firstErr != nil {
		return firstErr
	}
	lat := make([]time.Duration, nManifests)
	manTime := run(nManifests, func(i int) error {
		t := time.Now()
		_, err := get(base + "/manifests/" + tag)
		lat[i] = time.Since(t)
		return err
	})
	if firstErr != nil {
		return firstErr
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	// One line, key=value, for bench/registry.sh to parse.
	fmt.Printf("blob_mib_s=%.1f manifest_req_s=%.0f manifest_p50_ms=%.3f manifest_p99_ms=%.3f\n",
		float64(bytesRead.Load())/(1<<20)/blobTime.Seconds(),
		float64(nManifests)/manTime.Seconds(), pct(0.50), pct(0.99))
	return nil
}
