package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// stepHits splits a classic build stream into its steps and reports, for
// each step after FROM (index 0 is step 2), whether it used the cache.
func stepHits(t *testing.T, out string) []bool {
	t.Helper()
	parts := regexp.MustCompile(`(?m)^Step \d+/\d+ : `).Split(out, -1)
	if len(parts) < 3 {
		t.Fatalf("no build steps in:\n%s", out)
	}
	var hits []bool
	for _, p := range parts[2:] {
		hits = append(hits, strings.Contains(p, " ---> Using cache"))
	}
	return hits
}

// buildWith runs `build ARGS...` with berth's CLI or the docker CLI.
func buildWith(t *testing.T, e *env, client string, args ...string) result {
	t.Helper()
	if client == "docker" {
		return must(t, e.docker(t, append([]string{"build"}, args...)...))
	}
	return must(t, e.berth(t, append([]string{"build"}, args...)...))
}

// TestBuildCacheIgnoredFile: changing a file that .dockerignore leaves out
// of the context keeps every step a cache hit (COPY . included), and the
// rebuilt image is the same — through both clients.
func TestBuildCacheIgnoredFile(t *testing.T) {
	e := daemonEnv(t)
	for _, client := range []string{"berth", "docker"} {
		t.Run(client, func(t *testing.T) {
			dir := writeContext(t, map[string]string{
				"Dockerfile":    "FROM busybox\nENV STAGE=" + client + "\nCOPY . /app/\nRUN ls /app > /listing\nCMD [\"cat\", \"/listing\"]\n",
				".dockerignore": "*.log\nscratch/\n",
				"main.txt":      "main\n",
				"debug.log":     "first\n",
				"scratch/x":     "first\n",
			})
			iid := filepath.Join(t.TempDir(), "iid")
			buildWith(t, e, client, "--no-cache", "--iidfile", iid, dir)
			first, _ := os.ReadFile(iid)
			t.Cleanup(func() { e.berth(t, "rmi", "-f", string(first)) })
			later := time.Now().Add(time.Hour)
			for _, p := range []string{"debug.log", "scratch/x"} {
				full := filepath.Join(dir, p)
				if err := os.WriteFile(full, []byte("changed content\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				os.Chtimes(full, later, later)
			}
			if err := os.WriteFile(filepath.Join(dir, "new.log"), []byte("new\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := buildWith(t, e, client, "--iidfile", iid, dir)
			for i, hit := range stepHits(t, r.stdout) {
				if !hit {
					t.Errorf("step %d missed the cache after an ignored file changed:\n%s", i+2, r.stdout)
				}
			}
			if second, _ := os.ReadFile(iid); string(second) != string(first) {
				t.Errorf("rebuild gave %s, first build %s", second, first)
			}
		})
	}
}

// TestBuildCacheCopyChange: changing the content (not the size or mtime)
// of one COPY'd file misses the cache from that COPY on, the steps before
// it still hit, and --explain names the changed file.
func TestBuildCacheCopyChange(t *testing.T) {
	e := daemonEnv(t)
	for _, client := range []string{"berth", "docker"} {
		t.Run(client, func(t *testing.T) {
			dir := writeContext(t, map[string]string{
				"Dockerfile": "FROM busybox\nENV STAGE=" + client + "\nCOPY a.txt /a.txt\nWORKDIR /w\nCOPY b.txt /b.txt\n" +
					"RUN cat /a.txt /b.txt > ab\nLABEL done=1\n",
				"a.txt": "aaaa\n",
				"b.txt": "bbbb\n",
			})
			b := filepath.Join(dir, "b.txt")
			fi, err := os.Stat(b)
			if err != nil {
				t.Fatal(err)
			}
			tag := "cachechange/" + uniq(t)
			t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
			first := []string{"--no-cache", "-t", tag, dir}
			if client == "berth" {
				// berth records the inputs --explain compares only in
				// builds run with --explain.
				first = append([]string{"--explain"}, first...)
			}
			buildWith(t, e, client, first...)
			// Same size, same mtime: only the content tells.
			if err := os.WriteFile(b, []byte("BBBB\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(b, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			args := []string{dir}
			if client == "berth" {
				args = []string{"--explain", dir}
			}
			r := buildWith(t, e, client, append([]string{"-t", tag}, args...)...)
			want := []bool{true, true, true, false, false, false} // ENV, COPY a, WORKDIR hit; COPY b on miss
			if got := stepHits(t, r.stdout); !slices.Equal(got, want) {
				t.Errorf("cache hits per step %v, want %v:\n%s", got, want, r.stdout)
			}
			if client == "berth" {
				if !regexp.MustCompile(`cache miss: file /b\.txt sha256:[0-9a-f]{64} changed`).MatchString(r.stdout) {
					t.Errorf("--explain does not name the changed file /b.txt:\n%s", r.stdout)
				}
				if strings.Contains(r.stdout, "file /a.txt") {
					t.Errorf("--explain names the unchanged /a.txt:\n%s", r.stdout)
				}
			}
		})
	}
}
