package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"

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

// TestBuildCacheImportAndBatch: both formats of the old build-cache.json
// are imported once into metadata.db (the file renamed); lookups read,
// and only flush writes: a build's new records, its hits' last use and
// use count, and its explain inputs, in one transaction.
func TestBuildCacheImportAndBatch(t *testing.T) {
	for name, old := range map[string]string{
		"flat":      `{"k1":"sha256:aa","explain/2/ff":"[\"base x\"]"}`,
		"versioned": `{"version":2,"steps":{"k1":{"id":"sha256:aa","created":"2026-01-01T00:00:00Z","lastUsed":"2026-01-01T00:00:00Z","uses":0}},"explain":{"explain/2/ff":"[\"base x\"]"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := bbolt.Open(filepath.Join(dir, "metadata.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p := filepath.Join(dir, "build-cache.json")
			if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := importBuildCacheJSON(db, p); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("build-cache.json still there after the import: %v", err)
			}
			if _, err := os.Stat(p + ".imported"); err != nil {
				t.Fatalf("the old file was not kept as .imported: %v", err)
			}
			c := &boltCache{db: db}
			if id, ok := c.Lookup("k1"); !ok || id != "sha256:aa" {
				t.Fatalf("imported record: %q %v", id, ok)
			}
			if v, ok := c.Lookup("explain/2/ff"); !ok || v != `["base x"]` {
				t.Fatalf("imported explain entry: %q %v", v, ok)
			}
			c.Store("k2", "sha256:bb")
			c.Store("explain/3/ee", `["base y"]`)
			if id, ok := c.Lookup("k2"); !ok || id != "sha256:bb" {
				t.Fatalf("a record of this build is not seen before flush: %q %v", id, ok)
			}
			if ix := loadBuildCache(db); len(ix.Steps) != 1 || len(ix.Explain) != 1 {
				t.Fatalf("the store was written before flush: %+v", ix)
			}
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			ix := loadBuildCache(db)
			if len(ix.Steps) != 2 || ix.Steps["k1"].Uses != 1 || ix.Steps["k2"].Uses != 1 ||
				!ix.Steps["k1"].LastUsed.After(ix.Steps["k1"].Created) || len(ix.Explain) != 2 {
				t.Fatalf("cache after flush: steps %v explain %v", ix.Steps, ix.Explain)
			}
			if _, ok := (&boltCache{db: db}).Lookup("nosuch"); ok {
				t.Fatal("a missing key was found")
			}
		})
	}
}
