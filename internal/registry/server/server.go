// Package server is berth's OCI distribution-spec v1.1 registry, served by
// `berth registry serve`: ping, blobs (GET/HEAD with Range, DELETE),
// resumable uploads (monolithic, chunked, cross-repository mount),
// manifests by tag and digest, tags list and catalog with pagination, and the
// referrers API. Optional: basic or bearer-token authentication (auth.go),
// online garbage collection (gc.go) and pull-through caching (proxy.go).
// It stores everything under one root directory:
//
//	<root>/
//	  content/blobs/<alg>/<hex>   blob and manifest bytes, named by digest
//	                              (sha256 is the daemon's content store layout)
//	  content/registry-ingest/    temp files of blobs being verified
//	  uploads/<uuid>/data         bytes of an upload session so far
//	  uploads/<uuid>/repo         the repository the session belongs to
//	  registry.db                 bbolt: per repository its blob links,
//	                              manifests (media type), tags and referrers
//	  control.sock                while served: takes `berth registry gc`
//	                              requests (registry.db is locked then)
//
// A blob becomes visible only after its digest was verified and it was
// renamed into content/blobs; a repository sees a blob only through its link
// in registry.db, so deleting a blob from one repository leaves the bytes for
// others; GC reclaims bytes no manifest references. GC owns every blob
// under content/blobs, so that directory must not be shared with another
// store. Upload sessions are plain files, so a restarted server resumes them.
//
// Lifecycle: New(root) opens the store, the *Server is an http.Handler,
// Close releases the database.
package server

import (
	_ "crypto/sha256" // digest algorithms the registry accepts
	_ "crypto/sha512"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Server is an OCI distribution registry over a filesystem root.
type Server struct {
	root  string
	blobs *blobStore
	db    *bbolt.DB
	log   *slog.Logger

	// uploadLocks serialises requests on one upload session (PATCH, PUT,
	// DELETE), keyed by session id.
	uploadLocks sync.Map
	// uploadHashes holds each session's running sha256 (*uploadHash).
	uploadHashes sync.Map
	// manifests keeps hot manifest bytes in memory (manifestcache.go).
	manifests manifestCache

	// auth, when set, guards every request (auth.go).
	auth *authorizer
	// proxy, when set, fills misses from an upstream registry (proxy.go).
	proxy *proxy
	// gcMu lets requests that make a blob reachable (link, HEAD, manifest
	// PUT) run together, and garbage collection alone (gc.go).
	gcMu sync.RWMutex
}

// New opens (creating if needed) a registry rooted at root. A second server
// on the same root fails after a second instead of sharing the database.
func New(root string, log *slog.Logger, opts ...Option) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	for _, d := range []string{root, filepath.Join(root, "uploads")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("registry: create %s: %w", d, err)
		}
	}
	removeUploadDebris(filepath.Join(root, "uploads"), log)
	bs, err := openBlobStore(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	db, err := bbolt.Open(filepath.Join(root, "registry.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", filepath.Join(root, "registry.db"), err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRepos)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry: init database: %w", err)
	}
	s := &Server{root: root, blobs: bs, db: db, log: log}
	for _, o := range opts {
		if err := o(s); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// uploadMaxAge is how long an untouched upload session is kept (the
// distribution registry's default purge age).
const uploadMaxAge = 7 * 24 * time.Hour

// removeUploadDebris drops session directories that a crash left before
// their repo file was written (no client holds their Location) and sessions
// untouched for uploadMaxAge. It runs when the server opens its root.
func removeUploadDebris(dir string, log *slog.Logger) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		_, err := os.Stat(filepath.Join(dir, e.Name(), "repo"))
		data, derr := os.Stat(filepath.Join(dir, e.Name(), "data"))
		if err == nil && derr == nil && time.Since(data.ModTime()) < uploadMaxAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			log.Warn("registry: remove upload debris", "dir", e.Name(), "err", err)
		}
	}
}

// Close releases the database. In-flight uploads stay on disk and resume
// when the root is opened again.
func (s *Server) Close() error { return s.db.Close() }

// nameRe is the distribution-spec repository name grammar.
// Compiled on first use, not at start-up: every berth process (a runtime
// CLI, a container's init) runs every package's init.
var nameRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
})

// tagRe is the distribution-spec tag grammar.
var tagRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
})

// maxNameLen bounds repository names (distribution's limit).
const maxNameLen = 255

// route is one parsed /v2/ request path.
type route struct {
	name string // repository
	kind string // "blobs", "uploads", "manifests", "tags", "referrers"
	ref  string // digest, tag or upload id; "" for upload start and tags list
}

// parseRoute splits /v2/<name>/<kind>/<ref>. Names contain slashes, so the
// kind is found from the end of the path: a tag, digest or upload id never
// contains one.
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok && name != "" {
		return route{name: name, kind: "tags"}, true
	}
	for _, k := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "uploads"},
		{"/manifests/", "manifests"},
		{"/blobs/", "blobs"},
		{"/referrers/", "referrers"},
	} {
		i := strings.LastIndex(rest, k.sep)
		if i <= 0 {
			continue
		}
		ref := rest[i+len(k.sep):]
		if strings.Contains(ref, "/") {
			continue
		}
		if ref == "" && k.kind != "uploads" {
			continue
		}
		return route{name: rest[:i], kind: k.kind, ref: ref}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok && name != "" {
		return route{name: name, kind: "uploads"}, true
	}
	return route{}, false
}

// ServeHTTP dispatches a distribution API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	switch {
	case s.auth != nil && s.auth.tokenPath != "" && r.URL.Path == s.auth.tokenPath:
		s.auth.serveToken(rec, r)
	case s.auth != nil && !s.auth.check(rec, r):
	default:
		s.serve(rec, r)
	}
	// Checked first: building the arguments costs allocations on every
	// request even when debug logging is off.
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("registry request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", rec.status, "duration", time.Since(start))
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v2", "/v2/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, errUnsupported("method %s not allowed on /v2/", r.Method))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return
	case "/v2/_catalog":
		if r.Method != http.MethodGet {
			writeError(w, errUnsupported("method %s not allowed on the catalog", r.Method))
			return
		}
		s.catalog(w, r)
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeError(w, &regError{Code: "NOT_FOUND", Status: http.StatusNotFound, Message: "unknown API path " + r.URL.Path})
		return
	}
	if len(rt.name) > maxNameLen || !nameRe().MatchString(rt.name) {
		writeError(w, errNameInvalid(rt.name))
		return
	}
	if s.proxy != nil {
		if handled, err := s.serveProxied(w, r, rt); handled {
			if err != nil {
				writeError(w, err)
			}
			return
		}
	}
	var err error
	switch rt.kind + " " + r.Method {
	case "blobs GET", "blobs HEAD":
		err = s.getBlob(w, r, rt)
	case "blobs DELETE":
		err = s.deleteBlob(w, rt)
	case "uploads POST":
		if rt.ref != "" {
			err = errUnsupported("POST on an upload session")
			break
		}
		err = s.startUpload(w, r, rt)
	case "uploads PATCH":
		err = s.patchUpload(w, r, rt)
	case "uploads PUT":
		err = s.finishUpload(w, r, rt)
	case "uploads GET":
		err = s.uploadStatus(w, rt)
	case "uploads DELETE":
		err = s.cancelUpload(w, rt)
	case "manifests GET", "manifests HEAD":
		err = s.getManifest(w, r, rt)
	case "manifests PUT":
		err = s.putManifest(w, r, rt)
	case "manifests DELETE":
		err = s.deleteManifest(w, rt)
	case "tags GET":
		err = s.listTags(w, r, rt)
	case "referrers GET":
		err = s.referrers(w, r, rt)
	default:
		err = errUnsupported("method %s not allowed on %s", r.Method, rt.kind)
	}
	if err != nil {
		writeError(w, err)
	}
}

// statusRecorder remembers the response status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom keeps the underlying writer's io.ReaderFrom visible. net/http
// sends an *os.File to a TCP connection with sendfile(2) only through it, and
// io.Copy (http.ServeContent's too) looks for it on the writer it is given:
// without this method every blob byte was copied through user space twice.
func (r *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(r.ResponseWriter, src)
}
