package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// manifestCacheBytes bounds the bytes of manifests kept in memory. A
// manifest is a few KiB, so this holds thousands.
const manifestCacheBytes = 32 << 20

// manifestCache keeps the bytes of recently served or pushed manifests in
// memory, keyed by digest. Manifest GETs are the hottest small request of a
// pull (every client, every tag resolution); from memory one is answered
// with a single write instead of open, header write, sendfile and close.
// Content is addressed by its digest, so a cached entry can never be stale:
// whether the repository still has the manifest is always decided by
// registry.db before the cache is asked (resolve), and bytes that GC deletes
// are bytes no manifest record names any more.
type manifestCache struct {
	mu    sync.Mutex
	m     map[digest.Digest][]byte
	bytes int
}

func (c *manifestCache) get(d digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	b, ok := c.m[d]
	c.mu.Unlock()
	return b, ok
}

// add remembers b as the bytes of d, evicting arbitrary entries (map
// order) when the cache is full; the working set of a registry's hot
// manifests is far below the bound, so eviction order hardly matters.
func (c *manifestCache) add(d digest.Digest, b []byte) {
	if len(b) > manifestCacheBytes/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[digest.Digest][]byte)
	}
	if _, ok := c.m[d]; ok {
		return
	}
	for k, v := range c.m {
		if c.bytes+len(b) <= manifestCacheBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= len(v)
	}
	c.m[d] = b
	c.bytes += len(b)
}

// manifestBytes returns the stored bytes of manifest d, from the cache or
// the blob store (then caching them). A missing file is MANIFEST_UNKNOWN
// for ref.
func (s *Server) manifestBytes(d digest.Digest, ref string) ([]byte, error) {
	if b, ok := s.manifests.get(d); ok {
		return b, nil
	}
	b, err := os.ReadFile(s.blobs.path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errManifestUnknown(ref)
		}
		return nil, fmt.Errorf("registry: read manifest %s: %w", d, err)
	}
	s.manifests.add(d, b)
	return b, nil
}
