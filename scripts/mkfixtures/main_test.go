package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestRun writes the three archives and checks each is a complete tar with
// the member a loader looks for first.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/hello with the go tool")
	}
	dir := t.TempDir()
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	for name, member := range map[string]string{
		"hello.tar":       "manifest.json",
		"busybox.tar":     "manifest.json",
		"busybox-oci.tar": "index.json",
	} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		tr := tar.NewReader(f)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			found = found || hdr.Name == member
		}
		f.Close()
		if !found {
			t.Errorf("%s lacks %s", name, member)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("output dir holds %d entries, want just the 3 archives (temp files or the hello binary left over?)", len(entries))
	}
}
