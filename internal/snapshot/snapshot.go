// Package snapshot keeps image layers unpacked on disk, once each, in
// directories named by chain ID, and the read-write layers of containers
// that overlayfs stacks on top of them.
//
// Lifecycle of a layer snapshot:
//
//	created, err := s.Create(ctx, chainID, func(diff string) (digest.Digest, error) {
//		// unpack the layer into diff (an empty directory) and return its chain ID
//	})
//	... s.DiffPath(chainID) is a lowerdir of container mounts ...
//	s.Remove(chainID) // once no image refers to it: reference counting is the image store's job
//
// Unpacking happens in ingest-<random>/diff; a "committed" marker is written
// last and the directory is renamed to <chain hex>, so a snapshot is either
// complete or absent. Open removes ingest debris and unmarked directories
// left by a crash.
//
// Lifecycle of a container's read-write layer:
//
//	s.PrepareRW(id)                 // containers/<id>/rw/{upper,work,lower}
//	s.Mount(id, chainIDs, target)   // overlay of the chain (top first) + upper
//	Unmount(target)
//	s.RemoveRW(id)
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"berth/internal/errdefs"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

const (
	markerName   = "committed"
	ingestPrefix = "ingest-"
)

// Store holds layer snapshots under root (<data root>/snapshots) and
// container rw layers under containers (<data root>/containers).
type Store struct {
	root       string
	containers string

	mu       sync.Mutex
	inflight map[digest.Digest]*call
}

type call struct {
	done chan struct{}
	err  error
}

// Open prepares the directories and removes what a crash left half-made:
// ingest-* directories and snapshot directories without their marker.
func Open(root, containers string) (*Store, error) {
	s := &Store{root: root, containers: containers, inflight: map[digest.Digest]*call{}}
	for _, d := range []string{root, containers} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, fmt.Errorf("snapshot: create %s: %w", d, err)
		}
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", root, err)
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), ingestPrefix) || !exists(filepath.Join(p, markerName)) {
			slog.Info("snapshot: removing half-made snapshot", "path", p)
			if err := removeAll(p); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// removeAll is os.RemoveAll that first makes overlay work dirs (mode 000)
// and read-only directories removable.
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", p, err)
	}
	return nil
}

// Path is the directory of a snapshot.
func (s *Store) Path(chainID digest.Digest) string { return filepath.Join(s.root, chainID.Encoded()) }

// DiffPath is the directory holding the layer's files, an overlay lowerdir.
func (s *Store) DiffPath(chainID digest.Digest) string { return filepath.Join(s.Path(chainID), "diff") }

// Exists reports whether a complete snapshot of chainID is on disk.
func (s *Store) Exists(chainID digest.Digest) bool {
	return exists(filepath.Join(s.Path(chainID), markerName))
}

// List returns the chain IDs of the complete snapshots on disk.
func (s *Store) List() ([]digest.Digest, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list: %w", err)
	}
	var out []digest.Digest
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() == nil && s.Exists(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// Create makes the snapshot chainID by calling fill on an empty diff
// directory, unless it exists already. When chainID is empty the chain is
// known only after unpacking (a commit): fill returns it. Concurrent calls for
// the same known chain unpack once; the others wait for it (and try
// themselves if it failed).
// It returns the chain ID and whether this call created the snapshot.
func (s *Store) Create(ctx context.Context, chainID digest.Digest, fill func(diff string) (digest.Digest, error)) (digest.Digest, bool, error) {
	if chainID == "" {
		return s.create(ctx, "", fill)
	}
	for {
		if s.Exists(chainID) {
			return chainID, false, nil
		}
		s.mu.Lock()
		if c, ok := s.inflight[chainID]; ok {
			s.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", false, ctx.Err()
			}
			continue // done or failed: look again, and unpack ourselves if it failed
		}
		c := &call{done: make(chan struct{})}
		s.inflight[chainID] = c
		s.mu.Unlock()
		got, created, err := s.create(ctx, chainID, fill)
		c.err = err
		s.mu.Lock()
		delete(s.inflight, chainID)
		s.mu.Unlock()
		close(c.done)
		return got, created, err
	}
}

func (s *Store) create(ctx context.Context, want digest.Digest, fill func(diff string) (digest.Digest, error)) (digest.Digest, bool, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(s.root, ingestPrefix+hex.EncodeToString(rnd[:]))
	diff := filepath.Join(tmp, "diff")
	if err := os.MkdirAll(diff, 0o755); err != nil {
		return "", false, fmt.Errorf("snapshot: create %s: %w", diff, err)
	}
	ok := false
	defer func() {
		if !ok {
			removeAll(tmp)
		}
	}()
	got, err := fill(diff)
	if err != nil {
		return "", false, err
	}
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	if want != "" && got != want {
		return "", false, errdefs.InvalidParameter(fmt.Errorf("snapshot: unpacked chain %s, expected %s", got, want))
	}
	if err := got.Validate(); err != nil {
		return "", false, fmt.Errorf("snapshot: bad chain ID %q: %w", got, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, markerName), []byte(got.String()+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("snapshot: write marker: %w", err)
	}
	if err := os.Rename(tmp, s.Path(got)); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return got, false, nil // someone else made the same layer: ours goes
		}
		return "", false, fmt.Errorf("snapshot: commit %s: %w", got, err)
	}
	ok = true
	return got, true, nil
}

// Remove deletes a snapshot and returns the disk bytes it occupied.
func (s *Store) Remove(chainID digest.Digest) (int64, error) {
	p := s.Path(chainID)
	if !exists(p) {
		return 0, nil
	}
	n, _ := DiskUsage(p)
	// Drop the marker first: a crash mid-removal then leaves a directory
	// that Open recognises as half-made.
	if err := os.Remove(filepath.Join(p, markerName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("snapshot: remove %s: %w", chainID, err)
	}
	return n, removeAll(p)
}

// Sync flushes the file system holding the snapshots: one syncfs instead
// of an fsync per unpacked file, run once before metadata refers to them.
func (s *Store) Sync() error {
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", s.root, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("snapshot: syncfs: %w", err)
	}
	return nil
}

// DiskUsage is what `du -s -B1` reports for p: allocated blocks of every
// entry, hardlinks counted once.
func DiskUsage(p string) (int64, error) {
	return sumOnce(p, func(fs.DirEntry) bool { return true }, func(st *unix.Stat_t) int64 { return st.Blocks * 512 })
}

// ContentSize is the apparent size of the regular files under p, hardlinks
// counted once: the size docker shows for layers and SizeRw.
func ContentSize(p string) (int64, error) {
	return sumOnce(p, func(d fs.DirEntry) bool { return d.Type().IsRegular() }, func(st *unix.Stat_t) int64 { return st.Size })
}

// sumOnce walks p and adds up size of the entries keep accepts, an inode
// with several links (a directory's count means its subdirectories) once.
// Entries that vanish during the walk are passed over.
func sumOnce(p string, keep func(fs.DirEntry) bool, size func(*unix.Stat_t) int64) (int64, error) {
	seen := map[[2]uint64]bool{}
	var total int64
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !keep(d) {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(q, &st); err != nil {
			return nil
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += size(&st)
		return nil
	})
	return total, err
}
