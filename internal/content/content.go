// Package content is berth's content-addressed blob store: every blob lives
// at blobs/sha256/<hex> under the store's root and is named by the sha256 of
// its bytes. A blob becomes visible only after its bytes were verified, by an
// atomic rename from ingest/, so no reader ever sees a partial blob.
//
// Lifecycle of a write:
//
//	w, _ := store.Writer()       // temp file in ingest/
//	io.Copy(w, r)                // hashed as it is written
//	d, _ := w.Commit(expected)   // verify, rename into blobs/sha256/<hex>
//	store.Sync(d)                // fsync, only before metadata references it
//
// A crash leaves at most files in ingest/, which Open removes.
package content

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"berth/internal/errdefs"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Store holds blobs under a root directory (<data root>/content).
type Store struct {
	root string
}

// Open creates the store's directories under root and removes ingest debris
// left by a crash.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.RemoveAll(s.ingestDir()); err != nil {
		return nil, fmt.Errorf("content: clear ingest dir %s: %w", s.ingestDir(), err)
	}
	for _, d := range []string{s.blobDir(), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content: create %s: %w", d, err)
		}
	}
	return s, nil
}

func (s *Store) blobDir() string   { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// Path returns where the blob named d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("content: invalid digest %q: %w", d, err))
	}
	if d.Algorithm() != digest.SHA256 {
		return "", errdefs.InvalidParameter(fmt.Errorf("content: unsupported digest algorithm %q", d.Algorithm()))
	}
	return filepath.Join(s.blobDir(), d.Encoded()), nil
}

// Open opens the blob named d for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("content: blob %s not found", d))
		}
		return nil, fmt.Errorf("content: open blob %s: %w", d, err)
	}
	return f, nil
}

// ReadAll returns the bytes of a blob of at most limit bytes.
func (s *Store) ReadAll(d digest.Digest, limit int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("content: read blob %s: %w", d, err)
	}
	if int64(len(b)) > limit {
		return nil, errdefs.InvalidParameter(fmt.Errorf("content: blob %s larger than %d bytes", d, limit))
	}
	return b, nil
}

// Size returns the size of a blob.
func (s *Store) Size(d digest.Digest) (int64, error) {
	p, err := s.Path(d)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errdefs.NotFound(fmt.Errorf("content: blob %s not found", d))
		}
		return 0, err
	}
	return st.Size(), nil
}

// Has reports whether the blob exists.
func (s *Store) Has(d digest.Digest) bool {
	_, err := s.Size(d)
	return err == nil
}

// Delete removes a blob and returns the disk bytes it occupied (0 when it
// did not exist).
func (s *Store) Delete(d digest.Digest) (int64, error) {
	p, err := s.Path(d)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, nil
		}
		return 0, fmt.Errorf("content: stat blob %s: %w", d, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("content: delete blob %s: %w", d, err)
	}
	return st.Blocks * 512, nil
}

// Walk calls fn for every blob in the store.
func (s *Store) Walk(fn func(d digest.Digest) error) error {
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("content: list blobs: %w", err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// Sync makes the named blobs and the blob directory durable. Callers run it
// once, just before metadata that references the blobs is committed, rather
// than fsyncing every blob on the hot path.
func (s *Store) Sync(ds ...digest.Digest) error {
	for _, d := range ds {
		f, err := s.Open(d)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("content: sync blob %s: %w", d, err)
		}
	}
	return syncDir(s.blobDir())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Writer is an in-progress blob: bytes written to it go to a temp file and
// into a running sha256.
type Writer struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// Writer starts a new blob.
func (s *Store) Writer() (*Writer, error) {
	f, err := os.CreateTemp(s.ingestDir(), "blob-")
	if err != nil {
		return nil, fmt.Errorf("content: start blob: %w", err)
	}
	return &Writer{s: s, f: f, h: sha256.New()}, nil
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Commit verifies the written bytes against expected (when not empty) and
// moves the blob into place. It returns the blob's digest. A blob that
// already exists is left as it is (same name, same bytes).
func (w *Writer) Commit(expected digest.Digest) (digest.Digest, error) {
	defer w.Close()
	d := w.Digest()
	if expected != "" && expected != d {
		return "", errdefs.InvalidParameter(fmt.Errorf("content: digest mismatch: expected %s, got %s", expected, d))
	}
	if err := w.f.Close(); err != nil {
		return "", fmt.Errorf("content: close blob %s: %w", d, err)
	}
	p, _ := w.s.Path(d)
	if err := os.Rename(w.f.Name(), p); err != nil {
		return "", fmt.Errorf("content: commit blob %s: %w", d, err)
	}
	w.done = true
	return d, nil
}

// Close abandons an uncommitted blob; it is a no-op after Commit.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// WriteBlob copies r into a new blob and verifies it against expected (when
// not empty).
func (s *Store) WriteBlob(r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	w, err := s.Writer()
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", 0, fmt.Errorf("content: write blob: %w", err)
	}
	d, err := w.Commit(expected)
	return d, w.n, err
}
