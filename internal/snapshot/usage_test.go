package snapshot

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUsageCountsHardlinksOnce: a file linked twice counts once in both
// sizes; ContentSize counts only regular files' bytes, DiskUsage whole
// blocks of every entry.
func TestUsageCountsHardlinksOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "f"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "g"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "d", "f"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("g", filepath.Join(dir, "s")); err != nil {
		t.Fatal(err)
	}
	size, err := ContentSize(dir)
	if err != nil || size != 10003 {
		t.Fatalf("ContentSize = %d, %v; want 10003", size, err)
	}
	du, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	du2, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if du != du2 || du%512 != 0 || du < 10003 {
		t.Fatalf("DiskUsage %d with the hard link, %d without; want equal multiples of 512 of at least 10003", du, du2)
	}
	if _, err := ContentSize(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("ContentSize of a missing directory: %v", err)
	}
}
