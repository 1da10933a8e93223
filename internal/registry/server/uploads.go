package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// An upload session is the directory uploads/<id> holding `data` (the bytes
// received so far, in order) and `repo` (the repository it belongs to).
// Nothing else is kept on disk, so a restarted server resumes any session:
// the offset is the size of data. A running sha256 of the session is kept
// in memory while it is in step with data, which spares re-reading the blob
// when the upload finishes with a sha256 digest (the common case); after a
// restart, a failed chunk or for another algorithm, data is hashed then.

// uploadHash is the in-memory running sha256 of a session's data.
type uploadHash struct {
	h hash.Hash
	n int64 // bytes hashed, valid while it equals the size of data
}

var uploadIDRe = sync.OnceValue(func() *regexp.Regexp { // compiled on first use (see nameRe)
	return regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
})

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) uploadDir(id string) string { return filepath.Join(s.root, "uploads", id) }

func (s *Server) lockUpload(id string) func() {
	m, _ := s.uploadLocks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// openUpload checks that session id exists and belongs to repository name,
// and returns its current size.
func (s *Server) openUpload(name, id string) (int64, error) {
	if !uploadIDRe().MatchString(id) {
		return 0, errUploadUnknown(id)
	}
	repo, err := os.ReadFile(filepath.Join(s.uploadDir(id), "repo"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errUploadUnknown(id)
		}
		return 0, fmt.Errorf("registry: read upload %s: %w", id, err)
	}
	if string(repo) != name {
		return 0, errUploadUnknown(id)
	}
	st, err := os.Stat(filepath.Join(s.uploadDir(id), "data"))
	if err != nil {
		return 0, fmt.Errorf("registry: stat upload %s: %w", id, err)
	}
	return st.Size(), nil
}

// uploadHeaders sets what every answer about a live session carries.
func uploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	h.Set("Docker-Upload-UUID", id)
	end := size - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Content-Length", "0")
}

// blobCreated answers a finished blob upload or mount.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a monolithic upload
// (?digest=), a cross-repository mount (?mount=&from=), or a new session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigest(m)
		if err != nil {
			return err
		}
		if s.mountable(q.Get("from"), d) {
			size, err := s.blobs.size(d)
			if err != nil {
				return err
			}
			if err := s.linkBlob(rt.name, d, size); err != nil {
				return err
			}
			blobCreated(w, rt.name, d)
			return nil
		}
		// Not mountable: the spec says to fall back to a new session.
	} else if dv := q.Get("digest"); dv != "" {
		d, err := parseDigest(dv)
		if err != nil {
			return err
		}
		n, err := s.blobs.write(r.Body, d)
		if err != nil {
			return err
		}
		if err := s.linkBlob(rt.name, d, n); err != nil {
			return err
		}
		blobCreated(w, rt.name, d)
		return nil
	}
	id := newUploadID()
	dir := s.uploadDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("registry: create upload %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o600); err != nil {
		return fmt.Errorf("registry: create upload %s: %w", id, err)
	}
	// repo is written last: a session without it is debris, never served.
	if err := os.WriteFile(filepath.Join(dir, "repo"), []byte(rt.name), 0o600); err != nil {
		return fmt.Errorf("registry: create upload %s: %w", id, err)
	}
	uploadHeaders(w, rt.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mountable reports whether blob d may be linked without an upload: it is
// in repository from, or (with no from) anywhere in the store. With access
// control on, a mount from a repository the client may not pull was turned
// into a plain upload before this point (authorizer.check).
func (s *Server) mountable(from string, d digest.Digest) bool {
	if from == "" {
		_, err := s.blobs.size(d)
		return err == nil
	}
	if !nameRe().MatchString(from) || !s.hasBlobLink(from, d) {
		return false
	}
	_, err := s.blobs.size(d)
	return err == nil
}

// parseContentRange reads a chunk's "start-end" Content-Range.
func parseContentRange(v string) (start, end int64, err error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	a, b, ok := strings.Cut(v, "-")
	if ok {
		b, _, _ = strings.Cut(b, "/")
		start, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			end, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, errRangeInvalid("invalid Content-Range %q", v)
	}
	return start, end, nil
}

// appendChunk appends a request body to session id at offset size. With a
// Content-Range, the chunk must start where the session ends (else 416)
// and its length must match. A failed read is rolled back so the session
// stays at its last good offset.
func (s *Server) appendChunk(r *http.Request, id string, size int64) (int64, error) {
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return size, err
		}
		if start != size {
			return size, errRangeInvalid("chunk starts at %d, the upload is at %d", start, size)
		}
		want = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return size, errSizeInvalid("Content-Length %d does not match Content-Range %q", r.ContentLength, cr)
		}
	}
	f, err := os.OpenFile(filepath.Join(s.uploadDir(id), "data"), os.O_WRONLY, 0)
	if err != nil {
		return size, fmt.Errorf("registry: open upload %s: %w", id, err)
	}
	defer f.Close()
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return size, fmt.Errorf("registry: seek upload %s: %w", id, err)
	}
	var dst io.Writer = f
	uh := s.uploadHash(id, size)
	if uh != nil {
		dst = io.MultiWriter(f, uh.h)
	}
	n, err := copyBody(dst, r.Body)
	if err == nil && want >= 0 && n != want {
		err = errSizeInvalid("chunk has %d bytes, Content-Range said %d", n, want)
	}
	if err != nil {
		f.Truncate(size)
		s.uploadHashes.Delete(id) // it has hashed bytes now cut off
		var re *regError
		if errors.As(err, &re) {
			return size, err
		}
		return size, errUploadInvalid("read chunk of upload %s: %v", id, err)
	}
	if uh != nil {
		uh.n += n
	}
	return size + n, nil
}

// uploadHash returns the running hash of session id when it covers exactly
// the size bytes on disk (a new session starts one at 0), else nil.
// Callers hold the session's lock.
func (s *Server) uploadHash(id string, size int64) *uploadHash {
	if size == 0 {
		uh := &uploadHash{h: sha256.New()}
		s.uploadHashes.Store(id, uh)
		return uh
	}
	v, ok := s.uploadHashes.Load(id)
	if !ok {
		return nil
	}
	uh := v.(*uploadHash)
	if uh.n != size {
		s.uploadHashes.Delete(id)
		return nil
	}
	return uh
}

// patchUpload serves PATCH /v2/<name>/blobs/uploads/<id>: one chunk, or the
// whole blob streamed.
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	defer s.lockUpload(rt.ref)()
	size, err := s.openUpload(rt.name, rt.ref)
	if err != nil {
		return err
	}
	size, err = s.appendChunk(r, rt.ref, size)
	if err != nil {
		var re *regError
		if errors.As(err, &re) && re.Status == http.StatusRequestedRangeNotSatisfiable {
			uploadHeaders(w, rt.name, rt.ref, size)
		}
		return err
	}
	uploadHeaders(w, rt.name, rt.ref, size)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishUpload serves PUT /v2/<name>/blobs/uploads/<id>?digest=: an
// optional last chunk, then verification and commit of the blob.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	defer s.lockUpload(rt.ref)()
	size, err := s.openUpload(rt.name, rt.ref)
	if err != nil {
		return err
	}
	dv := r.URL.Query().Get("digest")
	if dv == "" {
		return errDigestInvalid("digest query parameter missing")
	}
	d, err := parseDigest(dv)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		if _, err := s.appendChunk(r, rt.ref, size); err != nil {
			return err
		}
	}
	data := filepath.Join(s.uploadDir(rt.ref), "data")
	n, err := s.commitUpload(rt.ref, data, d)
	if err != nil {
		return err
	}
	if err := s.linkBlob(rt.name, d, n); err != nil {
		return err
	}
	s.removeUpload(rt.ref)
	blobCreated(w, rt.name, d)
	return nil
}

// commitUpload verifies a session's data against d, with the running hash
// when it is in step, else by reading data, and moves it into the store.
func (s *Server) commitUpload(id, data string, d digest.Digest) (int64, error) {
	st, err := os.Stat(data)
	if err != nil {
		return 0, fmt.Errorf("registry: stat upload %s: %w", id, err)
	}
	if d.Algorithm() == digest.SHA256 && st.Size() > 0 {
		if uh := s.uploadHash(id, st.Size()); uh != nil {
			if digest.NewDigest(digest.SHA256, uh.h) != d {
				return 0, errDigestInvalid("uploaded content does not match digest %s", d)
			}
			return st.Size(), s.blobs.commitVerified(data, d)
		}
	}
	return s.blobs.commitFile(data, d)
}

func (s *Server) removeUpload(id string) {
	if err := os.RemoveAll(s.uploadDir(id)); err != nil {
		s.log.Warn("registry: remove upload", "id", id, "err", err)
	}
	s.uploadLocks.Delete(id)
	s.uploadHashes.Delete(id)
}

// uploadStatus serves GET /v2/<name>/blobs/uploads/<id>.
func (s *Server) uploadStatus(w http.ResponseWriter, rt route) error {
	size, err := s.openUpload(rt.name, rt.ref)
	if err != nil {
		return err
	}
	uploadHeaders(w, rt.name, rt.ref, size)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cancelUpload serves DELETE /v2/<name>/blobs/uploads/<id>.
func (s *Server) cancelUpload(w http.ResponseWriter, rt route) error {
	defer s.lockUpload(rt.ref)()
	if _, err := s.openUpload(rt.name, rt.ref); err != nil {
		return err
	}
	s.removeUpload(rt.ref)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
