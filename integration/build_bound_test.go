package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-units"
)

// TestBuildCacheBound: a daemon configured with a small build cache bound
// (daemon.json builder.gc.defaultKeepStorage, the same setting as
// --build-cache-max) prunes the least recently used steps after a build
// that takes the cache over it: the older build's layer goes, the newer
// build stays cached (across a daemon restart too), and system df's
// build cache is within the bound.
func TestBuildCacheBound(t *testing.T) {
	shared := daemonEnv(t)
	const bound = "3MB"
	e := startConfiguredDaemon(t, shared, map[string]any{"builder": map[string]any{"gc": map[string]any{"defaultKeepStorage": bound}}})
	must(t, e.berth(t, "load", "-i", filepath.Join(shared.dir, "busybox.tar")))
	// Two contexts of 2 MB of random data each: one build fits the
	// bound, two do not.
	ctx := func(name string) string {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY " + name + " /" + name + "\nLABEL built=" + name + "\n"})
		data := make([]byte, 2_000_000)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	older, newer := ctx("older.bin"), ctx("newer.bin")
	must(t, e.berth(t, "build", "--progress=plain", older))
	if r := must(t, e.berth(t, "build", "--progress=plain", older)); strings.Count(r.stdout, "Using cache") != 2 {
		t.Fatalf("a build within the bound was not cached:\n%s", r.stdout)
	}
	must(t, e.berth(t, "build", "--progress=plain", newer))

	// The cache survives a daemon restart (the bound was applied before).
	e.stop()
	if err := e.start(); err != nil {
		t.Fatalf("restart the daemon: %v", err)
	}
	r := must(t, e.berth(t, "build", "--progress=plain", newer))
	if n := strings.Count(r.stdout, "Using cache"); n != 2 {
		t.Fatalf("the newest build lost its cache (%d hits, want 2):\n%s", n, r.stdout)
	}
	df := must(t, e.berth(t, "system", "df", "--format", "{{.Type}}={{.Size}}")).stdout
	var size string
	for _, l := range strings.Split(df, "\n") {
		if v, ok := strings.CutPrefix(l, "Build Cache="); ok {
			size = v
		}
	}
	got, err := units.FromHumanSize(size)
	max, _ := units.FromHumanSize(bound)
	if err != nil || got > max || got < 2_000_000 {
		t.Fatalf("system df build cache %q (%v): want the newest build's 2 MB, within %s\n%s", size, err, bound, df)
	}
	r = must(t, e.berth(t, "build", "--progress=plain", older))
	if strings.Contains(r.stdout, "Step 2/3 : COPY older.bin /older.bin\n ---> Using cache") {
		t.Fatalf("the older build's COPY step is still cached over the bound:\n%s", r.stdout)
	}
}
