package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"berth/internal/build/buildtest"
)

// buildText builds a Dockerfile given as text, with dir as the context,
// on the fake backend.
func buildText(t *testing.T, fb *fakeBackend, dir, dockerfile string) (string, string, error) {
	t.Helper()
	df, err := Parse(strings.NewReader(dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	id, err := Build(context.Background(), fb, memCache{}, df, Options{ContextDir: dir, Out: &out})
	return id, out.String(), err
}

// TestAddURL fetches from a loopback server: the file is named after the
// URL in a directory destination, mode 0600 (or --chmod), never unpacked,
// and --checksum is verified.
func TestAddURL(t *testing.T) {
	const body = "remote content\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/data.txt":
			w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
			fmt.Fprint(w, body)
		case "/dl/":
			w.Header().Set("Content-Disposition", `attachment; filename="named.bin"`)
			fmt.Fprint(w, "by disposition")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body)))
	fb := newFakeBackend(t)
	dir := t.TempDir()
	id, out, err := buildText(t, fb, dir, "FROM busybox\n"+
		"ADD "+srv.URL+"/files/data.txt /in/\n"+
		"ADD --checksum="+sum+" --chmod=644 --chown=app "+srv.URL+"/files/data.txt /renamed\n"+
		"ADD "+srv.URL+"/dl/ /d/\n")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tree := fb.describe(id)
	for _, want := range []string{
		`/in/data.txt 0 600 0:0 "remote content\n"`,
		`/renamed 0 644 1001:1001 "remote content\n"`,
		`/d/named.bin 0 600 0:0 "by disposition"`,
	} {
		if !strings.Contains(tree, want+"\n") {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	for _, tc := range []struct{ df, err string }{
		{"ADD --checksum=sha256:" + strings.Repeat("0", 64) + " " + srv.URL + "/files/data.txt /x", "digest mismatch"},
		{"ADD " + srv.URL + "/missing /x", "404"},
		{"COPY " + srv.URL + "/files/data.txt /x", "source can't be a URL for COPY"},
	} {
		_, out, err := buildText(t, fb, dir, "FROM busybox\n"+tc.df+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q\n%s", tc.df, err, tc.err, out)
		}
	}
}

// gitServer serves a repository with two commits (tag v1 on the first)
// over git's dumb HTTP protocol on loopback.
func gitServer(t *testing.T) string {
	return buildtest.GitServer(t, map[string]string{"README": "v1\n", "sub/inner.txt": "inner v1\n"}, map[string]string{"README": "v2\n"})
}

// TestAddGit clones over dumb HTTP: the default branch, a tag with a
// subdirectory, and --keep-git-dir.
func TestAddGit(t *testing.T) {
	repo := gitServer(t)
	fb := newFakeBackend(t)
	id, out, err := buildText(t, fb, t.TempDir(), "FROM busybox\n"+
		"ADD "+repo+" /head/\n"+
		"ADD "+repo+"#v1:sub /old\n"+
		"ADD --keep-git-dir "+repo+"#main /kept\n")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tree := fb.describe(id)
	for _, want := range []string{`/head/README 0 644 0:0 "v2\n"`, `/old/inner.txt 0 644 0:0 "inner v1\n"`, `/kept/README 0 644 0:0 "v2\n"`, "/kept/.git/HEAD 0 "} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	for _, bad := range []string{"/head/.git", "/old/README"} {
		if strings.Contains(tree, bad) {
			t.Errorf("tree has %s:\n%s", bad, tree)
		}
	}
	if _, _, err := buildText(t, fb, t.TempDir(), "FROM busybox\nADD "+repo+"#nosuchref /x\n"); err == nil {
		t.Error("ADD of a missing ref succeeded")
	}
}
