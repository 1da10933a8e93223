package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	"go.etcd.io/bbolt"
)

// GCOptions tune a garbage collection.
type GCOptions struct {
	// Grace spares unreferenced blobs touched more recently than this:
	// blobs just uploaded for a manifest not pushed yet. Blobs are touched
	// when an upload or mount links them and when a client HEADs them
	// (which is how a pusher decides to skip an upload).
	Grace time.Duration `json:"grace"`
	// DryRun reports what would go without removing anything.
	DryRun bool `json:"dryRun"`
}

// GCReport says what a collection found.
type GCReport struct {
	Marked  int             `json:"marked"`
	Deleted []digest.Digest `json:"deleted"`
	Freed   int64           `json:"freed"`
	DryRun  bool            `json:"dryRun"`
}

// GC removes blobs that no manifest needs. The roots are every manifest any
// repository holds (tagged or only by digest); from them it marks configs,
// layers, index children and subjects, following stored manifests. It
// then sweeps unmarked blobs older than the grace period, and their links.
//
// GC holds gcMu for writing throughout, while the short steps that make a
// blob reachable (linking it, HEAD, storing a manifest) hold it for
// reading; long uploads do not, so pushes keep streaming meanwhile. A
// manifest PUT checks its blobs' links after any sweep, so it can never
// store a manifest whose blobs were just swept.
func (s *Server) GC(ctx context.Context, o GCOptions) (GCReport, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	rep := GCReport{DryRun: o.DryRun, Deleted: []digest.Digest{}}
	marked, err := s.mark()
	if err != nil {
		return rep, err
	}
	rep.Marked = len(marked)
	cutoff := time.Now().Add(-o.Grace)
	dir := filepath.Join(s.blobs.root, "blobs")
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e.IsDir() {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(filepath.Base(filepath.Dir(p))), e.Name())
		if d.Validate() != nil || marked[d] {
			return nil
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil
		}
		if !o.DryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("registry: gc remove %s: %w", d, err)
			}
		}
		rep.Deleted = append(rep.Deleted, d)
		rep.Freed += info.Size()
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("registry: gc sweep %s: %w", dir, err)
	}
	if !o.DryRun && len(rep.Deleted) > 0 {
		if err := s.unlinkEverywhere(rep.Deleted); err != nil {
			return rep, err
		}
	}
	s.log.Info("registry gc", "marked", rep.Marked, "deleted", len(rep.Deleted), "freed", rep.Freed, "dryRun", o.DryRun)
	return rep, nil
}

// mark returns every digest reachable from the stored manifests.
func (s *Server) mark() (map[digest.Digest]bool, error) {
	var roots []digest.Digest
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRepos).ForEach(func(name, _ []byte) error {
			if ms := repoBucket(tx, string(name), bucketManifests); ms != nil {
				ms.ForEach(func(k, _ []byte) error {
					roots = append(roots, digest.Digest(k))
					return nil
				})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: gc mark: %w", err)
	}
	marked := map[digest.Digest]bool{}
	var walk func(d digest.Digest)
	walk = func(d digest.Digest) {
		if marked[d] {
			return
		}
		marked[d] = true
		b, err := os.ReadFile(s.blobs.path(d))
		if err != nil {
			return // a sparse index's missing child
		}
		var m manifestFields
		if json.Unmarshal(b, &m) != nil {
			return
		}
		if m.Config != nil {
			marked[m.Config.Digest] = true
		}
		for _, l := range m.Layers {
			marked[l.Digest] = true
		}
		for _, c := range m.Manifests {
			walk(c.Digest)
		}
		if m.Subject != nil {
			walk(m.Subject.Digest)
		}
	}
	for _, d := range roots {
		walk(d)
	}
	return marked, nil
}

// unlinkEverywhere drops swept blobs' links from every repository.
func (s *Server) unlinkEverywhere(ds []digest.Digest) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRepos).ForEach(func(name, _ []byte) error {
			b := repoBucket(tx, string(name), bucketBlobs)
			if b == nil {
				return nil
			}
			for _, d := range ds {
				if err := b.Delete([]byte(d)); err != nil {
					return fmt.Errorf("registry: gc unlink %s from %s: %w", d, name, err)
				}
			}
			return nil
		})
	})
}

// controlSocket is where a serving registry takes GC requests from
// `berth registry gc`, which cannot open registry.db while it is served.
func controlSocket(root string) string { return filepath.Join(root, "control.sock") }

// ServeControl answers POST /gc on <root>/control.sock until ctx ends, so
// that another process can collect garbage while this one serves.
func (s *Server) ServeControl(ctx context.Context) error {
	p := controlSocket(s.root)
	os.Remove(p) // a crashed server's socket
	ln, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("registry: listen on %s: %w", p, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		var o GCOptions
		o.Grace, _ = time.ParseDuration(r.URL.Query().Get("grace"))
		o.DryRun, _ = strconv.ParseBool(r.URL.Query().Get("dry-run"))
		rep, err := s.GC(r.Context(), o)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	})
	hs := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	err = hs.Serve(ln)
	os.Remove(p)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// RunGC collects garbage in the registry at root: through the serving
// process's control socket when one serves it, else by opening the root
// itself (registry.db's lock keeps a server from starting meanwhile).
func RunGC(ctx context.Context, root string, o GCOptions) (GCReport, error) {
	sock := controlSocket(root)
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		u := fmt.Sprintf("http://registry/gc?grace=%s&dry-run=%t", o.Grace, o.DryRun)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return GCReport{}, fmt.Errorf("registry: gc through %s: %w", sock, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var b [512]byte
			n, _ := resp.Body.Read(b[:])
			return GCReport{}, fmt.Errorf("registry: gc through %s: %s: %s", sock, resp.Status, b[:n])
		}
		var rep GCReport
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			return GCReport{}, fmt.Errorf("registry: gc through %s: decode report: %w", sock, err)
		}
		return rep, nil
	}
	s, err := New(root, nil)
	if err != nil {
		return GCReport{}, err
	}
	defer s.Close()
	return s.GC(ctx, o)
}

// touch marks a blob as just used, for GC's grace period.
func (bs *blobStore) touch(d digest.Digest) error {
	now := time.Now()
	if err := os.Chtimes(bs.path(d), now, now); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errBlobUnknown(d.String())
		}
		return fmt.Errorf("registry: touch blob %s: %w", d, err)
	}
	return nil
}
