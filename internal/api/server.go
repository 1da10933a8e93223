// Package api is berth's Docker Engine API server: it turns HTTP requests on
// the daemon socket into Backend calls, following the wire contract observed
// from the docker CLI (shared/engine-api/CONTRACT.md).
//
// Lifecycle: New(backend, options) builds the route table; Serve(listener)
// accepts connections until Shutdown, which stops accepting, ends the
// long-lived streams (events, wait, logs -f, stats, attach) and waits for
// the plain requests in flight.
//
// Every request goes through one middleware that strips and checks the
// /vX.Y prefix and sets the Api-Version, Docker-Experimental, Ostype and
// Server headers; every error goes through writeError, which maps the
// errdefs class to the status code. Hijacked streams (attach, exec start)
// answer "101 UPGRADED" themselves and then speak raw bytes.
package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"berth/internal/errdefs"
)

// Options configure the server.
type Options struct {
	// Version is the API version advertised by /_ping and the highest
	// accepted in a /vX.Y prefix, e.g. "1.47".
	Version string
	// MinVersion is the lowest accepted /vX.Y prefix, e.g. "1.24".
	MinVersion string
	// Logger receives request and error logs; nil means slog.Default().
	Logger *slog.Logger
	// ServerName is the value of the Server response header, e.g.
	// "berth/0.1 (linux)".
	ServerName string
}

// Server is the Engine API HTTP server.
type Server struct {
	backend Backend
	opts    Options
	log     *slog.Logger
	router  router
	http    *http.Server

	mu       sync.Mutex
	hijacked map[net.Conn]struct{}
	closing  chan struct{}
	closed   bool
}

// New returns a server serving b. Zero options get defaults: version 1.47,
// minimum 1.24, slog.Default(), server name "berth (linux)".
func New(b Backend, o Options) *Server {
	if o.Version == "" {
		o.Version = "1.47"
	}
	if o.MinVersion == "" {
		o.MinVersion = "1.24"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ServerName == "" {
		o.ServerName = "berth (linux)"
	}
	s := &Server{
		backend:  b,
		opts:     o,
		log:      o.Logger,
		hijacked: map[net.Conn]struct{}{},
		closing:  make(chan struct{}),
	}
	s.routes()
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

// Handler returns the http.Handler serving the Engine API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve accepts connections on l until Shutdown. It returns nil after a
// Shutdown and the accept error otherwise.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends streaming responses and
// hijacked connections, and waits (until ctx ends) for other requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
		for c := range s.hijacked {
			c.Close()
		}
	}
	s.mu.Unlock()
	return s.http.Shutdown(ctx)
}

// streamContext is the request context, also cancelled when the server
// shuts down: long-lived streams must not hold Shutdown up.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// trackHijacked registers a hijacked connection so Shutdown can close it;
// the returned func unregisters it.
func (s *Server) trackHijacked(c net.Conn) func() {
	s.mu.Lock()
	if s.closed {
		c.Close()
	}
	s.hijacked[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.hijacked, c)
		s.mu.Unlock()
	}
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+(?:\.[0-9]+)*)(/.*)$`)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.Path
	version := s.opts.Version
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
	}
	h := w.Header()
	h.Set("Api-Version", s.opts.Version)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", s.opts.ServerName)

	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", sw.status, "duration", time.Since(start))
	}()
	// A handler's panic must not vanish into a closed connection (the
	// client sees only EOF): log it with its stack and answer 500 when no
	// header has gone out yet. http.ErrAbortHandler keeps its meaning.
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
		if sw.status == 0 && !sw.hijacked {
			s.writeError(sw, r, fmt.Errorf("internal error serving %s %s: %v", r.Method, r.URL.Path, v))
			return
		}
		panic(http.ErrAbortHandler)
	}()

	if compareVersions(version, s.opts.Version) > 0 {
		s.writeError(sw, r, errdefs.InvalidParameter(fmt.Errorf(
			"client version %s is too new. Maximum supported API version is %s", version, s.opts.Version)))
		return
	}
	if compareVersions(version, s.opts.MinVersion) < 0 {
		s.writeError(sw, r, errdefs.InvalidParameter(fmt.Errorf(
			"client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version",
			version, s.opts.MinVersion)))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), versionKey{}, version))

	handler, p, pathFound := s.router.match(r.Method, path)
	if handler == nil {
		if pathFound {
			s.writeError(sw, r, errMethodNotAllowed{})
			return
		}
		s.writeError(sw, r, errdefs.NotFound(errors.New("page not found")))
		return
	}
	if err := handler(sw, r, p); err != nil {
		if sw.status != 0 || sw.hijacked {
			// The response has started: the status line is gone, only
			// the log can tell.
			s.log.Warn("api stream ended with error", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		s.writeError(sw, r, err)
	}
}

type errMethodNotAllowed struct{}

func (errMethodNotAllowed) Error() string { return "method not allowed" }

// compareVersions compares dotted numeric versions ("1.9" < "1.10").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// statusWriter records the status code so handlers' errors after the
// response started are not written twice. It keeps Flush and Hijack
// reachable through http.ResponseController (Unwrap).
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data, headers included, to the client.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijack takes over the connection.
func (w *statusWriter) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	w.hijacked = true
	return c, rw, nil
}

// ping answers /_ping: HEAD with no body, GET with "OK". Both carry the
// API version the client negotiates from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ params) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

// drainBody reads what is left of an upload (a tar's trailing blocks, the
// last chunk) before a full-duplex handler returns. Otherwise the response
// can complete while the client is still sending: the client puts the
// connection back in its pool, the server drops it, and the client's next
// request on it fails with EPIPE or EOF. Past 64 MiB (a client that keeps
// sending after an early error) the server gives up and closes instead.
func drainBody(r *http.Request) {
	io.CopyN(io.Discard, r.Body, 64<<20)
}
