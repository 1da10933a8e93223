package integration

import (
	"archive/tar"
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These scenarios run a private daemon of their own — on a tiny file
// system, or killed with SIGKILL in the middle of its work — and check that
// the store it leaves is consistent and that it keeps working.

// privateDaemon starts a daemon with its own data and exec roots. prepare,
// if set, runs before the daemon starts (to mount a small file system on
// the data root, say). Everything is removed when the test ends.
func privateDaemon(t *testing.T, prepare func(e *env) error) *env {
	t.Helper()
	sh := daemonEnv(t) // builds the binary and holds the fixture tarballs
	dir, err := os.MkdirTemp("", "berth-priv-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{bin: sh.bin, dir: dir, dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"),
		sock: filepath.Join(dir, "berth.sock"), logPath: filepath.Join(dir, "daemon.log")}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			if b, err := os.ReadFile(e.logPath); err == nil {
				t.Logf("private daemon log (tail):\n%s", tail(string(b), 3000))
			}
		}
		e.cleanup()
	})
	if prepare != nil {
		if err := prepare(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	if out, err := e.berthErr("load", "-i", filepath.Join(sh.dir, "busybox.tar")); err != nil {
		t.Fatalf("load busybox into the private daemon: %v: %s", err, out)
	}
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// bigArchive writes a docker-archive with layers of random (incompressible)
// content of the given sizes, tagged tag, and returns its path.
func bigArchive(t *testing.T, tag string, sizes ...int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	var layers, diffIDs []string
	for i, size := range sizes {
		// A layer: one file of random bytes.
		var lb strings.Builder
		ltw := tar.NewWriter(&lb)
		ltw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data%d.bin", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		if _, err := io.CopyN(ltw, rand.Reader, int64(size)); err != nil {
			t.Fatal(err)
		}
		ltw.Close()
		layer := lb.String()
		sum := sha256.Sum256([]byte(layer))
		name := fmt.Sprintf("l%d/layer.tar", i)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(layer)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		io.WriteString(tw, layer)
		layers = append(layers, name)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cs := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cs[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": layers}})
	for _, f := range []struct {
		name string
		body []byte
	}{{cfgName, cfg}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeBytes is the free space of the file system holding path.
func freeBytes(t *testing.T, path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestFullDiskDuringLoad loads images bigger than the daemon's 30 MiB data
// root: once failing while the blob is written, once while the layer is
// unpacked. Each must fail clearly, leave no partial image or file, and the
// daemon must keep working.
func TestFullDiskDuringLoad(t *testing.T) {
	e := privateDaemon(t, func(e *env) error {
		if err := os.MkdirAll(e.dataRoot, 0o700); err != nil {
			return err
		}
		if err := syscall.Mount("tmpfs", e.dataRoot, "tmpfs", 0, "size=30m,mode=0700"); err != nil {
			return fmt.Errorf("mount a 30 MiB tmpfs as the data root: %w", err)
		}
		return nil
	})
	before := e.storeState(t)
	free := freeBytes(t, e.dataRoot)
	for _, c := range []struct {
		name  string
		sizes []int
	}{
		{"blob-too-big", []int{40 << 20}},
		{"unpack-too-big", []int{8 << 20, 7 << 20}}, // the blobs fit, the blobs plus their unpacked files do not
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.berth(t, "load", "-i", bigArchive(t, "toobig:"+c.name, c.sizes...))
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "no space left on device") {
				t.Fatalf("load on a full disk: want a failure saying \"no space left on device\", got %s", r)
			}
			t.Logf("load refused: %s", strings.TrimSpace(r.stderr))
			if d := before.diff(e.storeState(t)); d != "" {
				t.Fatalf("the failed load changed the store:\n%s", d)
			}
			// All space is given back (a little slack for metadata).
			if now := freeBytes(t, e.dataRoot); now < free-(256<<10) {
				t.Fatalf("the failed load left %d KiB used on the data root", (free-now)>>10)
			}
			if r := e.berth(t, "image", "inspect", "toobig:"+c.name); r.code == 0 {
				t.Fatal("a partial image is visible")
			}
		})
	}
	// The daemon still works: containers run, a small image loads.
	if r := must(t, e.docker(t, "run", "--rm", "busybox", "echo", "still works")); r.stdout != "still works\n" {
		t.Fatalf("run after the full disk: %q", r.stdout)
	}
	r := must(t, e.berth(t, "load", "-i", bigArchive(t, "fits:v1", 1<<20)))
	if !strings.Contains(r.stdout, "Loaded image: fits:v1") {
		t.Fatalf("load of an image that fits: %s", r)
	}
}

// checkConsistent asserts that every image and container the daemon lists
// can be inspected, and that it can still run a container.
func checkConsistent(t *testing.T, e *env, when string) {
	t.Helper()
	imgs := must(t, e.berth(t, "images", "-a", "-q", "--no-trunc")).stdout
	for _, id := range strings.Fields(imgs) {
		if r := e.berth(t, "image", "inspect", id); r.code != 0 {
			t.Fatalf("%s: listed image %s cannot be inspected: %s", when, id, r)
		}
	}
	tags := must(t, e.berth(t, "images", "--format", "{{.Repository}}:{{.Tag}}")).stdout
	for _, ref := range strings.Fields(tags) {
		if ref == "<none>:<none>" {
			continue
		}
		if r := e.berth(t, "image", "inspect", "-f", "{{.Id}}", ref); r.code != 0 {
			t.Fatalf("%s: reference %s does not resolve: %s", when, ref, r)
		}
	}
	ctrs := must(t, e.berth(t, "ps", "-a", "-q", "--no-trunc")).stdout
	for _, id := range strings.Fields(ctrs) {
		if r := e.berth(t, "inspect", id); r.code != 0 {
			t.Fatalf("%s: listed container %s cannot be inspected: %s", when, id, r)
		}
	}
	if r := e.berth(t, "run", "--rm", "busybox", "echo", "alive"); r.code != 0 || r.stdout != "alive\n" {
		t.Fatalf("%s: run after restart: %s", when, r)
	}
}

// countEntries counts files and directories below dir (dir excluded).
func countEntries(dir string) (n int, names []string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		n++
		if len(names) < 10 {
			names = append(names, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	return n, names
}

// crashDuring runs berth args in the background and kills the daemon with
// SIGKILL after a random delay up to max; it then waits for the CLI and
// restarts the daemon.
func crashDuring(t *testing.T, e *env, max time.Duration, args ...string) result {
	t.Helper()
	var r result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r = e.berth(t, args...)
	}()
	time.Sleep(time.Duration(mrand.Int64N(int64(max))))
	e.kill9()
	wg.Wait()
	if err := e.start(); err != nil {
		t.Fatalf("restart after SIGKILL: %v", err)
	}
	return r
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a private daemon many times; skipped with -short")
	}
	e := privateDaemon(t, nil)

	// SIGKILL during load, at random points of it: first time one load to
	// know how long it takes.
	start := time.Now()
	must(t, e.berth(t, "load", "-i", bigArchive(t, "crash-load:timing", 6<<20, 6<<20, 6<<20)))
	loadTime := time.Since(start)
	for i := range 6 {
		tag := fmt.Sprintf("crash-load:%d", i)
		archive := bigArchive(t, tag, 6<<20, 6<<20, 6<<20)
		r := crashDuring(t, e, loadTime, "load", "-i", archive)
		t.Logf("load %d: killed the daemon; the CLI got exit %d %s", i, r.code, strings.TrimSpace(r.stderr))
		checkConsistent(t, e, fmt.Sprintf("load %d (cli: exit %d)", i, r.code))
		// Either the image is wholly there or not at all; loading again works.
		if r := e.berth(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", tag); r.code == 0 && r.stdout != "3\n" {
			t.Fatalf("image %s after the crash has %q layers", tag, r.stdout)
		}
		must(t, e.berth(t, "load", "-i", archive))
	}

	// SIGKILL during rm of running and created containers, timed the same way.
	var rmTime time.Duration
	for i := range 7 {
		var names []string
		for j := range 5 {
			n := fmt.Sprintf("crash-rm-%d-%d", i, j)
			if j%2 == 0 {
				must(t, e.berth(t, "run", "-d", "--name", n, "busybox", "sleep", "300"))
			} else {
				must(t, e.berth(t, "create", "--name", n, "busybox", "true"))
			}
			names = append(names, n)
		}
		if i == 0 {
			start := time.Now()
			must(t, e.berth(t, append([]string{"rm", "-f"}, names...)...))
			rmTime = time.Since(start)
			continue
		}
		r := crashDuring(t, e, rmTime, append([]string{"rm", "-f"}, names...)...)
		t.Logf("rm %d: killed the daemon; the CLI got exit %d, removed %q", i, r.code, strings.Fields(r.stdout))
		checkConsistent(t, e, fmt.Sprintf("rm %d", i))
		// What survived can still be removed, and then its name is free.
		for _, n := range names {
			if r := e.berth(t, "inspect", n); r.code == 0 {
				must(t, e.berth(t, "rm", "-f", n))
			}
			must(t, e.berth(t, "create", "--name", n, "busybox", "true"))
			must(t, e.berth(t, "rm", n))
		}
	}

	// Remove everything: no orphan blob, snapshot, container dir or bundle.
	if ids := strings.Fields(must(t, e.berth(t, "ps", "-a", "-q")).stdout); len(ids) > 0 {
		must(t, e.berth(t, append([]string{"rm", "-f"}, ids...)...))
	}
	must(t, e.berth(t, "container", "prune", "-f"))
	must(t, e.berth(t, "image", "prune", "-a", "-f"))
	if out := must(t, e.berth(t, "images", "-a", "-q")).stdout; out != "" {
		t.Fatalf("images left after prune -a: %q", out)
	}
	for _, sub := range []string{"content/blobs", "snapshots", "containers"} {
		if n, names := countEntries(filepath.Join(e.dataRoot, sub)); n > 0 && !(sub == "content/blobs" && n == 1 && names[0] == "sha256") {
			t.Errorf("%s holds %d orphan entries after pruning everything: %v", sub, n, names)
		}
	}
	if n, names := countEntries(filepath.Join(e.execRoot, "bundles")); n > 0 {
		t.Errorf("exec-root bundles hold %d orphan entries: %v", n, names)
	}
}
