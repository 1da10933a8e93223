package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	digest "github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"berth/internal/api"
	"berth/internal/build"
	"berth/internal/image"
)

// The classic builder's step cache lives in the daemon's metadata.db
// (bbolt): bucket build-cache-steps maps a step's cache key to a JSON
// buildCacheRecord (the image the step made, when it was made and last
// used, for LRU pruning); bucket build-cache-explain maps --explain's
// keys to the inputs of the step's last build. The images themselves are
// ordinary untagged images of the store; pruning a record deletes its
// image when nothing else (a tag, a container, a child image) holds it.
//
// A lookup is a read transaction. What a build changes — the records of
// the steps it ran, the last use of its hits, the inputs of every step —
// is kept in memory and written by flush in one transaction when the
// build ends, failed or not: one commit per build however large the
// cache. A crash loses that build's records (misses, never a wrong hit:
// the image a record names is checked to exist).
//
// The earlier store, <data-root>/build-cache.json (a flat key -> ID map,
// then a versioned index), is imported once and renamed
// build-cache.json.imported.

var (
	buildCacheStepsBucket   = []byte("build-cache-steps")
	buildCacheExplainBucket = []byte("build-cache-explain")
)

// buildCacheMu keeps pruning runs (builder prune, the bound after a
// build) from choosing from the same records at once.
var buildCacheMu sync.Mutex

// buildCacheRecord is one step of the cache.
type buildCacheRecord struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
	Uses     int       `json:"uses"`
}

// buildCacheIndex is the whole cache, as pruning and system df read it
// (and as build-cache.json held it).
type buildCacheIndex struct {
	Version int                          `json:"version"`
	Steps   map[string]*buildCacheRecord `json:"steps"`
	Explain map[string]string            `json:"explain,omitempty"`
}

// boltCache is build.Cache over metadata.db for one build; flush writes
// what the build changed.
type boltCache struct {
	db      *bbolt.DB
	mu      sync.Mutex
	touched map[string]time.Time         // hits: key -> when
	steps   map[string]*buildCacheRecord // records made by this build
	explain map[string]string            // explain inputs of this build
}

var (
	importMu         sync.Mutex
	importedDataRoot = map[string]bool{}
)

func (d *Daemon) buildCache() *boltCache {
	importMu.Lock()
	if !importedDataRoot[d.cfg.DataRoot] {
		importedDataRoot[d.cfg.DataRoot] = true
		if err := importBuildCacheJSON(d.db, filepath.Join(d.cfg.DataRoot, "build-cache.json")); err != nil {
			d.log.Warn("build cache: importing build-cache.json failed", "err", err)
		}
	}
	importMu.Unlock()
	return &boltCache{db: d.db}
}

func (d *Daemon) cacheMountRoot() string {
	return filepath.Join(d.cfg.DataRoot, "build-cache-mounts")
}

// readBuildCacheJSON reads build-cache.json in either of its formats.
func readBuildCacheJSON(raw []byte) (*buildCacheIndex, error) {
	var v2 buildCacheIndex
	if json.Unmarshal(raw, &v2) == nil && v2.Version == 2 {
		if v2.Steps == nil {
			v2.Steps = map[string]*buildCacheRecord{}
		}
		return &v2, nil
	}
	// The first format: a flat key -> image ID map.
	var flat map[string]string
	if err := json.Unmarshal(raw, &flat); err != nil {
		return nil, fmt.Errorf("read build cache index: %w", err)
	}
	ix := &buildCacheIndex{Version: 2, Steps: map[string]*buildCacheRecord{}, Explain: map[string]string{}}
	now := time.Now().UTC()
	for k, v := range flat {
		if strings.HasPrefix(k, "explain/") {
			ix.Explain[k] = v
		} else {
			ix.Steps[k] = &buildCacheRecord{ID: v, Created: now, LastUsed: now}
		}
	}
	return ix, nil
}

// importBuildCacheJSON moves the records of the old file store into db
// (records already in db win) and renames the file, so it runs once.
func importBuildCacheJSON(db *bbolt.DB, path string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ix, err := readBuildCacheJSON(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		sb, eb, err := buildCacheBuckets(tx)
		if err != nil {
			return err
		}
		for k, r := range ix.Steps {
			if sb.Get([]byte(k)) != nil {
				continue
			}
			v, _ := json.Marshal(r)
			if err := sb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for k, v := range ix.Explain {
			if eb.Get([]byte(k)) == nil {
				if err := eb.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	return os.Rename(path, path+".imported")
}

func buildCacheBuckets(tx *bbolt.Tx) (steps, explain *bbolt.Bucket, err error) {
	if steps, err = tx.CreateBucketIfNotExists(buildCacheStepsBucket); err != nil {
		return nil, nil, err
	}
	if explain, err = tx.CreateBucketIfNotExists(buildCacheExplainBucket); err != nil {
		return nil, nil, err
	}
	return steps, explain, nil
}

// loadBuildCache reads every record (for pruning and system df).
func loadBuildCache(db *bbolt.DB) *buildCacheIndex {
	ix := &buildCacheIndex{Version: 2, Steps: map[string]*buildCacheRecord{}, Explain: map[string]string{}}
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(buildCacheStepsBucket); b != nil {
			b.ForEach(func(k, v []byte) error {
				var r buildCacheRecord
				if json.Unmarshal(v, &r) == nil {
					ix.Steps[string(k)] = &r
				}
				return nil
			})
		}
		if b := tx.Bucket(buildCacheExplainBucket); b != nil {
			b.ForEach(func(k, v []byte) error {
				ix.Explain[string(k)] = string(v)
				return nil
			})
		}
		return nil
	})
	return ix
}

func (c *boltCache) Lookup(key string) (string, bool) {
	explain := strings.HasPrefix(key, "explain/")
	c.mu.Lock()
	if explain {
		if v, ok := c.explain[key]; ok {
			c.mu.Unlock()
			return v, true
		}
	} else if r, ok := c.steps[key]; ok {
		c.mu.Unlock()
		return r.ID, true
	}
	c.mu.Unlock()
	var val []byte
	c.db.View(func(tx *bbolt.Tx) error {
		bucket := buildCacheStepsBucket
		if explain {
			bucket = buildCacheExplainBucket
		}
		if b := tx.Bucket(bucket); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				val = bytes.Clone(v) // valid only inside the transaction
			}
		}
		return nil
	})
	if val == nil {
		return "", false
	}
	if explain {
		return string(val), true
	}
	var r buildCacheRecord
	if json.Unmarshal(val, &r) != nil || r.ID == "" {
		return "", false
	}
	c.mu.Lock()
	if c.touched == nil {
		c.touched = map[string]time.Time{}
	}
	c.touched[key] = time.Now().UTC()
	c.mu.Unlock()
	return r.ID, true
}

func (c *boltCache) Store(key, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(key, "explain/") {
		if c.explain == nil {
			c.explain = map[string]string{}
		}
		c.explain[key] = id
		return
	}
	if c.steps == nil {
		c.steps = map[string]*buildCacheRecord{}
	}
	now := time.Now().UTC()
	c.steps[key] = &buildCacheRecord{ID: id, Created: now, LastUsed: now, Uses: 1}
}

// flush writes what this build changed in one transaction: its new
// records, the last use and use count of its hits, its explain inputs.
func (c *boltCache) flush() error {
	c.mu.Lock()
	touched, steps, explain := c.touched, c.steps, c.explain
	c.touched, c.steps, c.explain = nil, nil, nil
	c.mu.Unlock()
	if len(touched)+len(steps)+len(explain) == 0 {
		return nil
	}
	return c.db.Update(func(tx *bbolt.Tx) error {
		sb, eb, err := buildCacheBuckets(tx)
		if err != nil {
			return err
		}
		for k, t := range touched {
			var r buildCacheRecord
			if v := sb.Get([]byte(k)); v == nil || json.Unmarshal(v, &r) != nil {
				continue // pruned meanwhile
			}
			if t.After(r.LastUsed) {
				r.LastUsed = t
			}
			r.Uses++
			v, _ := json.Marshal(&r)
			if err := sb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for k, r := range steps {
			v, _ := json.Marshal(r)
			if err := sb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for k, v := range explain {
			if string(eb.Get([]byte(k))) == v {
				continue // a rebuild with the same inputs dirties no page
			}
			if err := eb.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// cacheEntry is a record with what pruning needs to know of its image.
type cacheEntry struct {
	key  string
	rec  *buildCacheRecord
	img  *image.Image // nil: the image is gone
	size int64        // bytes of the layer the step added, 0 if counted elsewhere
}

// cacheEntries lists the records, least recently used first, each with
// the size of the layer its step added (counted once per layer).
func (d *Daemon) cacheEntries(ix *buildCacheIndex) []cacheEntry {
	var out []cacheEntry
	seen := map[digest.Digest]bool{}
	for k, r := range ix.Steps {
		out = append(out, cacheEntry{key: k, rec: r})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].rec.LastUsed.Equal(out[j].rec.LastUsed) {
			return out[i].rec.LastUsed.Before(out[j].rec.LastUsed)
		}
		return out[i].key < out[j].key
	})
	for i := range out {
		img, err := d.images.Resolve(out[i].rec.ID)
		if err != nil {
			continue
		}
		out[i].img = img
		parentLayers := 0
		if img.Parent != "" {
			if p, err := d.images.Resolve(img.Parent.String()); err == nil {
				parentLayers = len(p.Layers)
			}
		}
		for _, l := range img.Layers[min(parentLayers, len(img.Layers)):] {
			if !seen[l.ChainID] {
				seen[l.ChainID] = true
				out[i].size += l.Size
			}
		}
	}
	return out
}

// protectedImages are the tagged images and all their ancestors: the
// records of their steps are not dangling.
func (d *Daemon) protectedImages() map[digest.Digest]bool {
	imgs, err := d.images.List()
	if err != nil {
		return nil
	}
	byID := map[digest.Digest]*image.Image{}
	for _, img := range imgs {
		byID[img.ID] = img
	}
	out := map[digest.Digest]bool{}
	for _, img := range imgs {
		if len(img.RepoTags) == 0 {
			continue
		}
		for p := img; p != nil && !out[p.ID]; p = byID[p.Parent] {
			out[p.ID] = true
		}
	}
	return out
}

// BuildCachePrune serves POST /build/prune and `berth builder prune`:
// it drops the selected records and deletes their images where nothing
// else holds them. SpaceReclaimed is the disk space really freed.
func (d *Daemon) BuildCachePrune(ctx context.Context, opts api.BuildPruneOptions) (*buildtypes.CachePruneReport, error) {
	buildCacheMu.Lock()
	defer buildCacheMu.Unlock()
	c := d.buildCache()
	ix := loadBuildCache(c.db)
	entries := d.cacheEntries(ix)
	protected := map[digest.Digest]bool{}
	if !opts.All {
		protected = d.protectedImages()
	}
	rep := &buildtypes.CachePruneReport{CachesDeleted: []string{}}
	keys, drop := selectPrune(entries, opts, protected, time.Now())
	clearExplain := opts.All && opts.Until == 0 && opts.KeepStorage == 0
	err := c.db.Update(func(tx *bbolt.Tx) error {
		sb, _, err := buildCacheBuckets(tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := sb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		if clearExplain {
			if err := tx.DeleteBucket(buildCacheExplainBucket); err != nil && !errors.Is(err, bbolterrors.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune the build cache: %w", err)
	}
	rep.CachesDeleted = append(rep.CachesDeleted, keys...)
	if len(drop) > 0 {
		// Prune repeats until nothing is left to delete, so a chain of
		// step images goes from its leaf down.
		ir, err := d.images.Prune(ctx, true, func(img *image.Image) bool { return drop[img.ID] })
		if ir != nil {
			rep.SpaceReclaimed += ir.SpaceReclaimed
		}
		if err != nil {
			return rep, err
		}
	}
	if opts.All && opts.Until == 0 && opts.KeepStorage == 0 {
		root := d.cacheMountRoot()
		if dirs, err := os.ReadDir(root); err == nil {
			for _, e := range dirs {
				p := filepath.Join(root, e.Name())
				n := treeSize(p)
				if os.RemoveAll(p) == nil {
					rep.CachesDeleted = append(rep.CachesDeleted, "cachemount:"+e.Name())
					rep.SpaceReclaimed += uint64(n)
				}
			}
		}
	}
	return rep, nil
}

// selectPrune picks the records to drop from entries (least recently
// used first) and the untagged images to delete with them.
func selectPrune(entries []cacheEntry, opts api.BuildPruneOptions, protected map[digest.Digest]bool, now time.Time) ([]string, map[digest.Digest]bool) {
	var total int64
	for _, e := range entries {
		total += e.size
	}
	var keys []string
	drop := map[digest.Digest]bool{}
	for _, e := range entries {
		if opts.KeepStorage > 0 && total <= opts.KeepStorage {
			break
		}
		if opts.Until > 0 && now.Sub(e.rec.LastUsed) < opts.Until {
			continue
		}
		if e.img != nil && protected[e.img.ID] {
			continue
		}
		keys = append(keys, e.key)
		total -= e.size
		if e.img != nil && len(e.img.RepoTags) == 0 {
			drop[e.img.ID] = true
		}
	}
	return keys, drop
}

// treeSize is the disk space of the files under p.
func treeSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*unix.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// buildCacheUsage is the build-cache line of system df.
func (d *Daemon) buildCacheUsage() *buildtypes.DiskUsage {
	entries := d.cacheEntries(loadBuildCache(d.buildCache().db))
	protected := d.protectedImages()
	u := &buildtypes.DiskUsage{Items: []buildtypes.CacheRecord{}}
	for _, e := range entries {
		if e.img == nil {
			continue
		}
		last := e.rec.LastUsed
		r := buildtypes.CacheRecord{ID: e.key, Type: "regular", Description: description(e.img), Size: e.size,
			CreatedAt: e.rec.Created, LastUsedAt: &last, UsageCount: e.rec.Uses, InUse: protected[e.img.ID]}
		if e.img.Parent != "" {
			r.Parents = []string{e.img.Parent.String()}
		}
		u.Items = append(u.Items, r)
		u.TotalCount++
		u.TotalSize += e.size
		if r.InUse {
			u.ActiveCount++
		} else {
			u.Reclaimable += e.size
		}
	}
	if dirs, err := os.ReadDir(d.cacheMountRoot()); err == nil {
		for _, de := range dirs {
			n := treeSize(filepath.Join(d.cacheMountRoot(), de.Name()))
			u.Items = append(u.Items, buildtypes.CacheRecord{ID: "cachemount:" + de.Name(), Type: "exec.cachemount",
				Description: "RUN --mount=type=cache", Size: n})
			u.TotalCount++
			u.TotalSize += n
			u.Reclaimable += n
		}
	}
	return u
}

// description is the step that made an image: its last history entry.
func description(img *image.Image) string {
	if h := img.Config.History; len(h) > 0 {
		return h[len(h)-1].CreatedBy
	}
	return ""
}

// defaultBuildCacheMax is the cache bound when none is configured: 10%
// of the data root's file system, at most 10 GB.
func defaultBuildCacheMax(dataRoot string) int64 {
	const cap10GB = 10_000_000_000
	var st unix.Statfs_t
	if err := unix.Statfs(dataRoot, &st); err != nil {
		return cap10GB
	}
	return min(cap10GB, int64(st.Blocks)*st.Bsize/10)
}

// enforceBuildCacheBound drops least recently used records (and their
// images) until the cache fits its bound; it runs after each build.
func (d *Daemon) enforceBuildCacheBound(ctx context.Context, max int64) {
	if max <= 0 {
		max = defaultBuildCacheMax(d.cfg.DataRoot)
	}
	entries := d.cacheEntries(loadBuildCache(d.buildCache().db))
	var total int64
	for _, e := range entries {
		total += e.size
	}
	if total <= max {
		return
	}
	rep, err := d.BuildCachePrune(ctx, api.BuildPruneOptions{All: true, KeepStorage: max})
	if err != nil {
		d.log.Warn("build cache: pruning to its bound failed", "max", max, "err", err)
		return
	}
	d.log.Info("build cache: pruned to its bound", "max", max, "records", len(rep.CachesDeleted), "reclaimed", rep.SpaceReclaimed)
}

var _ build.Cache = (*boltCache)(nil)
