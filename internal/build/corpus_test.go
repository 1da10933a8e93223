package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.txt from the current results")

// TestCorpus builds every testdata/<case>/Dockerfile (the case directory
// is the context) against the fake backend and compares the final image's
// config and file tree, the progress output, or the error with want.txt.
// An optional options file holds "arg K=V", "label k=v" and "target T".
func TestCorpus(t *testing.T) {
	cases, err := filepath.Glob("testdata/*/Dockerfile")
	if err != nil || len(cases) < 40 {
		t.Fatalf("corpus has %d cases (%v), want 40+", len(cases), err)
	}
	for _, dfPath := range cases {
		dir := filepath.Dir(dfPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := runCase(t, dir)
			wantPath := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("result differs from %s\n--- got:\n%s\n--- want:\n%s", wantPath, got, want)
			}
		})
	}
}

var idLine = regexp.MustCompile(`(?m)^ ---> [0-9a-f]{12}$`)

// stepIDs hides the step image IDs: a COPY layer's digest depends on the
// checkout's file times.
func stepIDs(s string) string { return idLine.ReplaceAllString(s, " ---> <id>") }

func runCase(t *testing.T, dir string) string {
	opts := Options{ContextDir: dir, BuildArgs: map[string]*string{}, Labels: map[string]string{}}
	if f, err := os.Open(filepath.Join(dir, "options")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			k, v, _ := strings.Cut(rest, "=")
			switch kind {
			case "arg":
				opts.BuildArgs[k] = &v
			case "label":
				opts.Labels[k] = v
			case "target":
				opts.Target = rest
			}
		}
		f.Close()
	}
	ignore, err := LoadIgnore(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// The case's own files are not part of its context.
	opts.Ignore = func(rel string) bool { return rel == "want.txt" || rel == "options" || ignore(rel) }
	var out strings.Builder
	opts.Out = &out
	f, err := os.Open(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df, err := Parse(f)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("parse error %v is not a *ParseError", err)
		}
		return "parse error: " + err.Error() + "\n"
	}
	fb := newFakeBackend(t)
	id, err := Build(context.Background(), fb, memCache{}, df, opts)
	if err != nil {
		var ee *ExitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return fmt.Sprintf("output:\n%serror (code %d): %v\n", stepIDs(out.String()), code, err)
	}
	return "output:\n" + stepIDs(out.String()) + fb.describe(id)
}

// TestCacheHit builds twice with one cache: the second build reuses every
// step ("Using cache") and gives the same image; NoCache runs them again.
func TestCacheHit(t *testing.T) {
	dir := "testdata/workdir"
	fb := newFakeBackend(t)
	cache := memCache{}
	build := func(noCache bool) (string, string) {
		f, err := os.Open(filepath.Join(dir, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		df, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		id, err := Build(context.Background(), fb, cache, df, Options{ContextDir: dir, Out: &out, NoCache: noCache})
		if err != nil {
			t.Fatal(err)
		}
		return id, out.String()
	}
	id1, out1 := build(false)
	id2, out2 := build(false)
	if strings.Contains(out1, "Using cache") {
		t.Errorf("first build used the cache:\n%s", out1)
	}
	if n := strings.Count(out2, "Using cache"); n != 6 {
		t.Errorf("second build used the cache %d times, want 6:\n%s", n, out2)
	}
	if id1 != id2 {
		t.Errorf("cached build gave %s, first %s", id2, id1)
	}
	if len(fb.runs) != 1 {
		t.Errorf("RUN executed %d times over two builds, want 1", len(fb.runs))
	}
	_, out3 := build(true)
	if strings.Contains(out3, "Using cache") || len(fb.runs) != 2 {
		t.Errorf("--no-cache build used the cache (runs %d):\n%s", len(fb.runs), out3)
	}
}

// TestReproducibleLayer checks that with SOURCE_DATE_EPOCH the same files
// give the same COPY layer whatever their mtimes.
func TestReproducibleLayer(t *testing.T) {
	var sums []string
	for i := range 2 {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte("same"), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2030+i, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		b := &builder{created: time.Unix(1000, 0).UTC()}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		set := layerSet{}
		if err := b.addFile(set, p, fi, "/dir/f", nil, nil); err != nil {
			t.Fatal(err)
		}
		b.addParents(set, "", "/dir/f")
		f, err := b.writeLayer(set)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		os.Remove(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("%x", h.Sum(nil)))
	}
	if sums[0] != sums[1] {
		t.Errorf("layers differ with SOURCE_DATE_EPOCH: %s vs %s", sums[0], sums[1])
	}
}
