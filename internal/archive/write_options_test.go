package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWriteTreeSkipAndMaxTime: Skip leaves out an entry (a directory with
// everything below it), MaxTime clamps later modification times only.
func TestWriteTreeSkipAndMaxTime(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"keep/old", "keep/new", "skipdir/x", "skipfile"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1000, 0)
	max := time.Unix(2000, 0)
	if err := os.Chtimes(filepath.Join(dir, "keep/old"), old, old); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	skip := func(rel string, _ *unix.Stat_t) bool { return rel == "skipdir" || rel == "skipfile" }
	if err := WriteTree(context.Background(), &buf, dir, WriteOptions{Skip: skip, MaxTime: max}); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.ModTime
	}
	for _, name := range []string{"skipdir/", "skipdir/x", "skipfile"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s was written despite Skip", name)
		}
	}
	if !got["keep/old"].Equal(old) {
		t.Errorf("keep/old mtime %v, want it kept at %v", got["keep/old"], old)
	}
	if !got["keep/new"].Equal(max) || !got["keep/"].Equal(max) {
		t.Errorf("keep/new %v, keep/ %v: want both clamped to %v", got["keep/new"], got["keep/"], max)
	}
}
