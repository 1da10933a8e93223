package daemon

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth/internal/api"
	"berth/internal/build"
	"berth/internal/image"
)

// The classic builder's step cache lives in <data-root>/build-cache.json:
// each record maps a step's cache key to the image the step made, with
// when it was made and last used (for LRU pruning); --explain's inputs
// ride along under "explain/" keys. The images themselves are ordinary
// untagged images of the store; pruning a record deletes its image when
// nothing else (a tag, a container, a child image) holds it.
//
// A file rewritten whole under one lock is enough here: a build touches
// it once per step, and a crash loses at most the last records (a cache
// miss, never a wrong hit: the image a record names is checked to exist).

var buildCacheMu sync.Mutex

// buildCacheRecord is one step of the cache.
type buildCacheRecord struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
	Uses     int       `json:"uses"`
}

type buildCacheIndex struct {
	Version int                          `json:"version"`
	Steps   map[string]*buildCacheRecord `json:"steps"`
	Explain map[string]string            `json:"explain,omitempty"`
}

// fileCache is build.Cache over build-cache.json. Hits are only noted
// in memory and written by flush, once per build: a cache-hit rebuild
// then reads the file per step but rewrites it once.
type fileCache struct {
	path    string
	mu      sync.Mutex
	touched map[string]time.Time
}

func (d *Daemon) buildCache() *fileCache {
	return &fileCache{path: filepath.Join(d.cfg.DataRoot, "build-cache.json")}
}

func (d *Daemon) cacheMountRoot() string {
	return filepath.Join(d.cfg.DataRoot, "build-cache-mounts")
}

func (c *fileCache) load() *buildCacheIndex {
	ix := &buildCacheIndex{Version: 2, Steps: map[string]*buildCacheRecord{}, Explain: map[string]string{}}
	raw, err := os.ReadFile(c.path)
	if err != nil {
		return ix
	}
	var v2 buildCacheIndex
	if json.Unmarshal(raw, &v2) == nil && v2.Version == 2 {
		ix = &v2
		if ix.Steps == nil {
			ix.Steps = map[string]*buildCacheRecord{}
		}
		if ix.Explain == nil {
			ix.Explain = map[string]string{}
		}
		return ix
	}
	// The first format: a flat key -> image ID map.
	ix = &buildCacheIndex{Version: 2, Steps: map[string]*buildCacheRecord{}, Explain: map[string]string{}}
	var flat map[string]string
	if json.Unmarshal(raw, &flat) == nil {
		now := time.Now().UTC()
		for k, v := range flat {
			if strings.HasPrefix(k, "explain/") {
				ix.Explain[k] = v
			} else {
				ix.Steps[k] = &buildCacheRecord{ID: v, Created: now, LastUsed: now}
			}
		}
	}
	return ix
}

func (c *fileCache) save(ix *buildCacheIndex) {
	raw, err := json.Marshal(ix)
	if err != nil {
		return
	}
	tmp := c.path + ".tmp"
	if os.WriteFile(tmp, raw, 0o600) == nil {
		os.Rename(tmp, c.path)
	}
}

func (c *fileCache) Lookup(key string) (string, bool) {
	buildCacheMu.Lock()
	defer buildCacheMu.Unlock()
	ix := c.load()
	if strings.HasPrefix(key, "explain/") {
		v, ok := ix.Explain[key]
		return v, ok
	}
	r, ok := ix.Steps[key]
	if !ok {
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

// flush records the hits of this build (last use, use count).
func (c *fileCache) flush() {
	c.mu.Lock()
	touched := c.touched
	c.touched = nil
	c.mu.Unlock()
	if len(touched) == 0 {
		return
	}
	buildCacheMu.Lock()
	defer buildCacheMu.Unlock()
	ix := c.load()
	for k, t := range touched {
		if r, ok := ix.Steps[k]; ok {
			if t.After(r.LastUsed) {
				r.LastUsed = t
			}
			r.Uses++
		}
	}
	c.save(ix)
}

func (c *fileCache) Store(key, id string) {
	buildCacheMu.Lock()
	defer buildCacheMu.Unlock()
	ix := c.load()
	if strings.HasPrefix(key, "explain/") {
		ix.Explain[key] = id
	} else {
		now := time.Now().UTC()
		ix.Steps[key] = &buildCacheRecord{ID: id, Created: now, LastUsed: now, Uses: 1}
	}
	c.save(ix)
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
	ix := c.load()
	entries := d.cacheEntries(ix)
	protected := map[digest.Digest]bool{}
	if !opts.All {
		protected = d.protectedImages()
	}
	rep := &buildtypes.CachePruneReport{CachesDeleted: []string{}}
	keys, drop := selectPrune(entries, opts, protected, time.Now())
	for _, k := range keys {
		delete(ix.Steps, k)
		rep.CachesDeleted = append(rep.CachesDeleted, k)
	}
	if opts.All && opts.Until == 0 && opts.KeepStorage == 0 {
		ix.Explain = map[string]string{}
	}
	c.save(ix)
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
	buildCacheMu.Lock()
	ix := d.buildCache().load()
	buildCacheMu.Unlock()
	entries := d.cacheEntries(ix)
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
	buildCacheMu.Lock()
	entries := d.cacheEntries(d.buildCache().load())
	buildCacheMu.Unlock()
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

var _ build.Cache = (*fileCache)(nil)
