package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"berth/internal/api"
	"berth/internal/image"
)

// TestSelectPrune: the LRU bound drops least recently used records first
// until the rest fits; until= spares recent ones; a plain prune spares
// records of tagged images (protected); tagged images are never deleted.
func TestSelectPrune(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(key string, ageH int, size int64, tagged bool) cacheEntry {
		img := &image.Image{ID: digest.FromString(key)}
		if tagged {
			img.RepoTags = []string{key + ":latest"}
		}
		return cacheEntry{key: key, rec: &buildCacheRecord{LastUsed: now.Add(-time.Duration(ageH) * time.Hour)}, img: img, size: size}
	}
	// Least recently used first, as cacheEntries sorts them.
	entries := []cacheEntry{mk("old", 48, 100, false), mk("mid", 10, 100, true), mk("new", 1, 100, false)}
	keys, drop := selectPrune(entries, api.BuildPruneOptions{All: true, KeepStorage: 150}, nil, now)
	if len(keys) != 2 || keys[0] != "old" || keys[1] != "mid" {
		t.Errorf("keep 150 of 300 dropped %v, want old and mid", keys)
	}
	if !drop[entries[0].img.ID] || drop[entries[1].img.ID] || len(drop) != 1 {
		t.Errorf("images to delete %v: want only the untagged old one", drop)
	}
	keys, _ = selectPrune(entries, api.BuildPruneOptions{All: true, Until: 24 * time.Hour}, nil, now)
	if len(keys) != 1 || keys[0] != "old" {
		t.Errorf("until=24h dropped %v, want old", keys)
	}
	protected := map[digest.Digest]bool{entries[1].img.ID: true}
	keys, _ = selectPrune(entries, api.BuildPruneOptions{}, protected, now)
	if len(keys) != 2 || keys[0] != "old" || keys[1] != "new" {
		t.Errorf("dangling prune dropped %v, want old and new", keys)
	}
}

// TestBuildCacheFileFormats: the first format (a flat key -> ID map) is
// read as records, lookups count uses, and explain data stays apart.
func TestBuildCacheFileFormats(t *testing.T) {
	p := filepath.Join(t.TempDir(), "build-cache.json")
	if err := os.WriteFile(p, []byte(`{"k1":"sha256:aa","explain/2/ff":"[\"base x\"]"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &fileCache{path: p}
	if id, ok := c.Lookup("k1"); !ok || id != "sha256:aa" {
		t.Fatalf("old record: %q %v", id, ok)
	}
	if v, ok := c.Lookup("explain/2/ff"); !ok || v != `["base x"]` {
		t.Fatalf("old explain entry: %q %v", v, ok)
	}
	c.Store("k2", "sha256:bb")
	c.flush()
	ix := c.load()
	if ix.Version != 2 || len(ix.Steps) != 2 || ix.Steps["k1"].Uses != 1 || ix.Steps["k2"].Uses != 1 || ix.Steps["k1"].LastUsed.Before(ix.Steps["k1"].Created) || len(ix.Explain) != 1 {
		t.Fatalf("index after store: %+v", ix)
	}
	if _, ok := c.Lookup("nosuch"); ok {
		t.Fatal("a missing key was found")
	}
}
