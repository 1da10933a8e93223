package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tgz is a gzip-compressed tar of one file, inner.txt.
func tgz(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	data := "inside the archive\n"
	if err := tw.WriteHeader(&tar.Header{Name: "inner.txt", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(data))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestAddUnpack follows BuildKit's ADD --unpack: by default a local
// archive is unpacked and a downloaded one is not; --unpack=true unpacks
// a download into the destination directory, --unpack=false keeps a
// local archive as the file it is.
func TestAddUnpack(t *testing.T) {
	archive := tgz(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(archive)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.tgz"), archive, 0o644); err != nil {
		t.Fatal(err)
	}
	fb := newFakeBackend(t)
	id, out, err := buildText(t, fb, dir, "FROM busybox\n"+
		"ADD a.tgz /local-default/\n"+
		"ADD --unpack=false a.tgz /local-kept/\n"+
		"ADD "+srv.URL+"/r.tgz /remote-default/\n"+
		"ADD --unpack=true "+srv.URL+"/r.tgz /remote-unpacked/\n")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tree := fb.describe(id)
	for _, want := range []string{
		`/local-default/inner.txt 0 644 0:0 "inside the archive\n"`,
		`/remote-unpacked/inner.txt 0 644 0:0 "inside the archive\n"`,
	} {
		if !strings.Contains(tree, want+"\n") {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	for _, kept := range []string{"/local-kept/a.tgz 0 644 ", "/remote-default/r.tgz 0 600 "} {
		if !strings.Contains(tree, "\n"+kept) {
			t.Errorf("tree lacks the archive itself at %q:\n%s", kept, tree)
		}
	}
	for _, unwanted := range []string{"/local-kept/inner.txt", "/remote-default/inner.txt", "/remote-unpacked/r.tgz"} {
		if strings.Contains(tree, unwanted+" ") {
			t.Errorf("tree has %s:\n%s", unwanted, tree)
		}
	}
}
