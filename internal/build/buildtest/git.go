// Package buildtest has helpers for the builder's tests (internal/build's
// and the integration tests'), like net/http/httptest.
package buildtest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitServer makes a git repository of two commits, the first (tagged v1)
// with the files of first and the second (branch main) with second
// written over them (name -> content; names ending in .sh are
// executable), and serves it read-only over git's dumb HTTP protocol on
// loopback until the test ends. It returns the repository's URL. The
// test is skipped when git is not installed.
func GitServer(t testing.TB, first, second map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (scripts/deps.sh installs it)")
	}
	work, bare := t.TempDir(), filepath.Join(t.TempDir(), "repo.git")
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "HOME="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	commit := func(files map[string]string, msg string) {
		t.Helper()
		for name, data := range files {
			p := filepath.Join(work, name)
			mode := os.FileMode(0o644)
			if strings.HasSuffix(name, ".sh") {
				mode = 0o755
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), mode); err != nil {
				t.Fatal(err)
			}
		}
		git(work, "add", ".")
		git(work, "commit", "-q", "-m", msg)
	}
	git(work, "init", "-q", "-b", "main")
	commit(first, "one")
	git(work, "tag", "v1")
	commit(second, "two")
	git(work, "clone", "-q", "--bare", work, bare)
	git(bare, "update-server-info")
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(bare))))
	t.Cleanup(srv.Close)
	return srv.URL + "/repo.git"
}
