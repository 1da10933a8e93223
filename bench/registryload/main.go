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
	"bufio"
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
	pushes := fs.Int("pushes", 16, "load: blob uploads in all (POST, PATCH, PUT as docker does)")
	pushMB := fs.Int("push-mb", 16, "load: MiB of each uploaded blob")
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
		err = load(*registry, *repo, *conc, *blobs, *manifests, *pushes, *pushMB)
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

func load(registry, repo string, conc, nBlobs, nManifests, nPushes, pushMB int) error {
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
	// Layer GETs go through one raw keep-alive connection per client whose
	// body the kernel splices to /dev/null: a remote client costs the server
	// nothing, but one on the same 2-CPU machine copying every byte into user
	// space spent as much CPU as the server and capped both registries at the
	// same rate. Both registries get the same client.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	conns := make(chan *blobConn, conc)
	for w := 0; w < conc; w++ {
		conns <- &blobConn{addr: registry}
	}
	blobTime := run(nBlobs, func(i int) error {
		c := <-conns
		defer func() { conns <- c }()
		n, err := c.get(devNull, "/v2/"+name+"/blobs/"+m.Layers[i%len(m.Layers)].Digest.String())
		bytesRead.Add(n)
		return err
	})
	close(conns)
	for c := range conns {
		c.close()
	}
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

	// Uploads: fresh random blobs every run (seeded by the clock, made
	// before the clock starts), so neither registry has them already.
	seed := uint64(time.Now().UnixNano())
	bodies := make([][]byte, nPushes)
	digests := make([]digest.Digest, nPushes)
	for i := range bodies {
		bodies[i] = make([]byte, pushMB<<20)
		rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(i), byte(i >> 8)}).Read(bodies[i])
		digests[i] = digest.FromBytes(bodies[i])
	}
	pushTime := run(nPushes, func(i int) error {
		return upload(hc, base, bodies[i], digests[i])
	})
	if firstErr != nil {
		return firstErr
	}

	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	// One line, key=value, for bench/registry.sh to parse.
	fmt.Printf("blob_mib_s=%.1f manifest_req_s=%.0f manifest_p50_ms=%.3f manifest_p99_ms=%.3f push_mib_s=%.1f\n",
		float64(bytesRead.Load())/(1<<20)/blobTime.Seconds(),
		float64(nManifests)/manTime.Seconds(), pct(0.50), pct(0.99),
		float64(nPushes*pushMB)/pushTime.Seconds())
	return nil
}

// blobConn is a minimal HTTP/1.1 keep-alive client for blob GETs that hands
// the body to the kernel: (*os.File).ReadFrom splices a TCP socket into
// /dev/null without copying the bytes into user space.
type blobConn struct {
	addr string
	conn *net.TCPConn
	br   *bufio.Reader
}

func (c *blobConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// get fetches path, sends its body to sink and returns the body's length.
func (c *blobConn) get(sink *os.File, path string) (int64, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn, c.br = conn.(*net.TCPConn), bufio.NewReader(conn)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.addr+path, nil)
	if err := req.Write(c.conn); err != nil {
		c.close()
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.close()
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		c.close()
		return 0, fmt.Errorf("GET %s: %s, Content-Length %d", path, resp.Status, resp.ContentLength)
	}
	// The header reader may hold the body's first bytes; the kernel moves
	// the rest.
	buffered := int64(min(c.br.Buffered(), int(resp.ContentLength)))
	c.br.Discard(int(buffered))
	n, err := io.Copy(sink, io.LimitReader(c.conn, resp.ContentLength-buffered))
	n += buffered
	if err == nil && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.close()
		return n, fmt.Errorf("GET %s: body: %w", path, err)
	}
	return n, nil
}

// upload pushes one blob the way docker and containerd do: POST opens a
// session, one PATCH streams the whole body, PUT ?digest= commits it.
func upload(hc *http.Client, base string, body []byte, d digest.Digest) error {
	do := func(method, u string, body []byte, want int) (*http.Response, error) {
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %s", method, u, resp.Status)
		}
		return resp, nil
	}
	loc := func(resp *http.Response) (string, error) {
		l, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("upload without Location: %w", err)
		}
		return l.String(), nil
	}
	resp, err := do(http.MethodPost, base+"/blobs/uploads/", nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	u, err := loc(resp)
	if err != nil {
		return err
	}
	if resp, err = do(http.MethodPatch, u, body, http.StatusAccepted); err != nil {
		return err
	}
	if u, err = loc(resp); err != nil {
		return err
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	_, err = do(http.MethodPut, u+sep+"digest="+d.String(), nil, http.StatusCreated)
	return err
}
