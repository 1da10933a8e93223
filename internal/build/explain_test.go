package build

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExplain rebuilds with one input changed at a time and checks that
// the first step to miss the cache names that input, whether or not the
// build before ran with Explain, and that it compares with the latest
// build of the step (a cache hit included).
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fb := newFakeBackend(t)
	cache := memCache{}
	explain := true
	build := func(v string) string {
		df, err := Parse(strings.NewReader("FROM busybox\nARG V\nCOPY a.txt /a.txt\nRUN echo $V\n"))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		_, err = Build(context.Background(), fb, cache, df, Options{ContextDir: dir, Out: &out, Explain: explain,
			BuildArgs: map[string]*string{"V": &v}})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	misses := func(out string) []string {
		var m []string
		for _, l := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(l, " ---> cache miss: "); ok {
				m = append(m, s)
			}
		}
		return m
	}
	write("one")
	first := misses(build("1"))
	if len(first) != 2 || !strings.HasPrefix(first[0], "no earlier build") {
		t.Fatalf("first build's misses %q, want 2 with no earlier build", first)
	}
	if m := misses(build("1")); len(m) != 0 {
		t.Fatalf("unchanged rebuild missed: %q", m)
	}
	// Builds without Explain record their inputs too, hits included.
	explain = false
	if out := build("7"); len(misses(out)) != 0 {
		t.Fatalf("a build without Explain explained:\n%s", out)
	}
	build("1") // all hits: the latest inputs are V=1 again
	write("two")
	explain = true
	m := misses(build("1"))
	fileRE := regexp.MustCompile(`^file /a\.txt sha256:[0-9a-f]{64} changed \(was sha256:[0-9a-f]{64}\)$`)
	if len(m) != 2 || !fileRE.MatchString(m[0]) || !strings.HasPrefix(m[1], "base sha256:") {
		t.Fatalf("after editing a.txt, misses %q: want the file's hash, then the RUN's base", m)
	}
	m = misses(build("2"))
	if len(m) != 2 || m[0] != "env V=2 changed (was 1)" {
		t.Fatalf("after --build-arg V=2, misses %q: want env V=2 changed first", m)
	}
	explain = false
	build("3")
	explain = true
	if m := misses(build("4")); len(m) != 2 || m[0] != "env V=4 changed (was 3)" {
		t.Fatalf("after a build without Explain with V=3, misses %q: want env V=4 changed (was 3)", m)
	}
}
