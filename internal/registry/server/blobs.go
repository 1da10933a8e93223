package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// blobStore is the content-addressed part of the root: the daemon's content
// layout (blobs/sha256/<hex>) extended to every algorithm the registry
// accepts (blobs/sha512/<hex>), which internal/content does not store.
type blobStore struct {
	root string
}

func openBlobStore(root string) (*blobStore, error) {
	s := &blobStore{root: root}
	// Temp files of interrupted verifications are garbage.
	if err := os.RemoveAll(s.ingestDir()); err != nil {
		return nil, fmt.Errorf("registry: clear %s: %w", s.ingestDir(), err)
	}
	if err := os.MkdirAll(s.ingestDir(), 0o700); err != nil {
		return nil, fmt.Errorf("registry: create %s: %w", s.ingestDir(), err)
	}
	return s, nil
}

// ingestDir is apart from the daemon's content/ingest, which the daemon
// clears when it starts: both may share one content directory.
func (s *blobStore) ingestDir() string { return filepath.Join(s.root, "registry-ingest") }

// parseDigest validates a digest from a request: well formed and of an
// algorithm this build can compute.
func parseDigest(v string) (digest.Digest, error) {
	d, err := digest.Parse(v)
	if err != nil {
		return "", errDigestInvalid("invalid digest %q: %v", v, err)
	}
	return d, nil
}

func (s *blobStore) path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded())
}

// size returns the size of a stored blob, or a BLOB_UNKNOWN error.
func (s *blobStore) size(d digest.Digest) (int64, error) {
	st, err := os.Stat(s.path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errBlobUnknown(d.String())
		}
		return 0, fmt.Errorf("registry: stat blob %s: %w", d, err)
	}
	return st.Size(), nil
}

func (s *blobStore) open(d digest.Digest) (*os.File, error) {
	f, err := os.Open(s.path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errBlobUnknown(d.String())
		}
		return nil, fmt.Errorf("registry: open blob %s: %w", d, err)
	}
	return f, nil
}

// commitFile verifies that the file at tmp holds the bytes named d and
// renames it into place. tmp must be on the same filesystem (it is either
// in ingest/ or an upload's data file). It returns the blob's size.
func (s *blobStore) commitFile(tmp string, d digest.Digest) (int64, error) {
	f, err := os.Open(tmp)
	if err != nil {
		return 0, fmt.Errorf("registry: open %s: %w", tmp, err)
	}
	v := d.Verifier()
	n, err := io.Copy(v, f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("registry: hash %s: %w", tmp, err)
	}
	if !v.Verified() {
		return 0, errDigestInvalid("uploaded content does not match digest %s", d)
	}
	return n, s.commitVerified(tmp, d)
}

// commitVerified renames tmp, already known to hold the bytes named d,
// into place.
func (s *blobStore) commitVerified(tmp string, d digest.Digest) error {
	p := s.path(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("registry: create %s: %w", filepath.Dir(p), err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("registry: commit blob %s: %w", d, err)
	}
	return nil
}

// write copies r into a temp file, verifies it against d and commits it.
// The bytes are hashed as they arrive, not read back from the file.
func (s *blobStore) write(r io.Reader, d digest.Digest) (int64, error) {
	f, err := os.CreateTemp(s.ingestDir(), "blob-")
	if err != nil {
		return 0, fmt.Errorf("registry: start blob: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	v := d.Verifier()
	n, err := copyBody(io.MultiWriter(f, v), r)
	if err != nil {
		f.Close()
		return 0, errUploadInvalid("read blob body: %v", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("registry: write blob: %w", err)
	}
	if !v.Verified() {
		return 0, errDigestInvalid("uploaded content does not match digest %s", d)
	}
	return n, s.commitVerified(f.Name(), d)
}

// copyBufs holds the buffers of copyBody.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyBody copies an upload's body with a 256 KiB buffer: io.Copy's 32 KiB
// costs a read, a file write and a hash call per 32 KiB, which showed in
// profiles of concurrent pushes; a buffer much larger than the CPU's L2
// cache makes the copy into the page cache read it back from memory.
func copyBody(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(onlyWriter{dst}, src, *bp)
}

// onlyWriter hides a destination's ReadFrom, which would make
// io.CopyBuffer ignore the buffer it is given.
type onlyWriter struct{ io.Writer }

// writeBytes stores b, whose digest the caller computed as d.
func (s *blobStore) writeBytes(b []byte, d digest.Digest) error {
	if _, err := os.Stat(s.path(d)); err == nil {
		return nil
	}
	f, err := os.CreateTemp(s.ingestDir(), "blob-")
	if err != nil {
		return fmt.Errorf("registry: start blob: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("registry: write blob %s: %w", d, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path(d)), 0o700); err != nil {
		return fmt.Errorf("registry: create %s: %w", filepath.Dir(s.path(d)), err)
	}
	if err := os.Rename(f.Name(), s.path(d)); err != nil {
		return fmt.Errorf("registry: commit blob %s: %w", d, err)
	}
	return nil
}

func (s *Server) blobDigest(rt route) (digest.Digest, error) {
	return parseDigest(rt.ref)
}

// getBlob serves GET and HEAD /v2/<name>/blobs/<digest>, with Range.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := s.blobDigest(rt)
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		// A pusher that sees the blob skips its upload: keep it past GC's
		// grace period for the manifest that follows.
		s.gcMu.RLock()
		if s.hasBlobLink(rt.name, d) {
			s.blobs.touch(d)
		}
		s.gcMu.RUnlock()
	}
	if !s.hasBlobLink(rt.name, d) {
		return errBlobUnknown(d.String())
	}
	f, err := s.blobs.open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	if wholeBlobGET(r) && serveMapped(w, f) {
		return nil
	}
	// ServeContent answers Range (206, and 416 for a range that is inverted
	// or starts past the end), conditional requests and HEAD.
	http.ServeContent(w, r, "", zeroTime, f)
	return nil
}

// deleteBlob removes the blob from the repository (its link); the bytes stay
// until garbage collection, which other repositories may still need.
func (s *Server) deleteBlob(w http.ResponseWriter, rt route) error {
	d, err := s.blobDigest(rt)
	if err != nil {
		return err
	}
	if err := s.unlinkBlob(rt.name, d); err != nil {
		return err
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
