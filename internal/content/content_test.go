package content

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"berth/internal/errdefs"

	digest "github.com/opencontainers/go-digest"
)

func TestWriteVerifyRename(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello blob")
	want := digest.FromBytes(data)
	d, n, err := s.WriteBlob(bytes.NewReader(data), want)
	if err != nil || d != want || n != int64(len(data)) {
		t.Fatalf("WriteBlob = %s %d %v", d, n, err)
	}
	got, err := s.ReadAll(d, 100)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %q %v", got, err)
	}
	if err := s.Sync(d); err != nil {
		t.Fatal(err)
	}
	// A mismatch leaves nothing: no blob, no temp file.
	_, _, err = s.WriteBlob(bytes.NewReader([]byte("other")), want[:len(want)-1]+"0")
	if !errdefs.IsInvalidParameter(err) {
		t.Fatalf("mismatch error = %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ents) != 0 {
		t.Errorf("ingest debris: %v", ents)
	}
	if s.Has(digest.FromBytes([]byte("other"))) {
		t.Error("mismatched blob visible")
	}
	if _, err := s.Open(digest.FromBytes([]byte("nope"))); !errdefs.IsNotFound(err) {
		t.Errorf("missing blob error = %v", err)
	}
	if _, err := s.Delete(d); err != nil || s.Has(d) {
		t.Errorf("delete: %v", err)
	}
}

func TestOpenRemovesIngestDebris(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "ingest"), 0o700)
	os.WriteFile(filepath.Join(root, "ingest", "blob-123"), []byte("half"), 0o600)
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ents) != 0 {
		t.Errorf("debris left: %v", ents)
	}
}
