package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Stream numbers of the multiplexed framing: [stream][0 0 0][len BE32].
const (
	streamStdout byte = 1
	streamStderr byte = 2
	streamSystem byte = 3 // a daemon error; the client library reports it
)

// Content types of the attach/logs streams.
const (
	mediaRawStream         = "application/vnd.docker.raw-stream"
	mediaMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// frameWriter writes each Write as one multiplexed frame. The frames of the
// stdout and stderr writers of one stream share a lock so they never
// interleave.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 8+len(p))
	buf[0] = f.stream
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(p)))
	copy(buf[8:], p)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockedWriter serialises writes from the stdout and stderr copies of a
// terminal stream, which share one raw writer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputStreams returns the stdout and stderr writers over w: framed
// without a terminal, the same raw writer with one.
func outputStreams(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		lw := &lockedWriter{mu: mu, w: w}
		return lw, lw
	}
	return &frameWriter{mu: mu, w: w, stream: streamStdout}, &frameWriter{mu: mu, w: w, stream: streamStderr}
}

// flushWriter flushes the HTTP response after every write, so log lines and
// stats samples reach the client at once.
type flushWriter struct {
	w http.ResponseWriter
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, http.NewResponseController(f.w).Flush()
}

// hijacker hands a backend the raw connection of an attach or exec start
// request. The response line is written only when the backend calls
// getStreams: that is when the client may send wait and start.
type hijacker struct {
	s         *Server
	w         *statusWriter
	r         *http.Request
	wantStdin bool

	mu      sync.Mutex
	taken   bool
	conn    net.Conn
	untrack func()
	stdout  io.Writer
}

func (s *Server) newHijacker(w http.ResponseWriter, r *http.Request, wantStdin bool) *hijacker {
	sw, _ := w.(*statusWriter)
	if sw == nil {
		sw = &statusWriter{ResponseWriter: w}
	}
	return &hijacker{s: s, w: sw, r: r, wantStdin: wantStdin}
}

// upgradeRequested reports whether the client asked for the 101 form
// (Connection: Upgrade + Upgrade: tcp); without it the stream follows a
// plain 200, as dockerd does.
func upgradeRequested(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// getStreams is the GetStreams the backend calls once. It takes over the
// connection, answers 101 (or 200) immediately and returns the streams.
func (h *hijacker) getStreams(tty bool) (Streams, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taken {
		return Streams{}, errors.New("streams of this request were already taken")
	}
	h.taken = true
	conn, rw, err := h.w.hijack()
	if err != nil {
		return Streams{}, err
	}
	h.conn = conn
	h.untrack = h.s.trackHijacked(conn)
	// The http server may have set deadlines for reading the request.
	conn.SetDeadline(time.Time{})
	// Anything the http server buffered for writing goes first.
	if err := rw.Writer.Flush(); err != nil {
		return Streams{}, fmt.Errorf("flush before hijack: %w", err)
	}
	// Since API 1.42 the content type of the 101 tells the client whether
	// to demultiplex; older clients, and the 200 form, get raw-stream.
	ct := mediaRawStream
	if !tty && compareVersions(apiVersion(h.r.Context()), "1.42") >= 0 {
		ct = mediaMultiplexedStream
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + mediaRawStream + "\r\n\r\n"
	if upgradeRequested(h.r) {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ct + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if _, err := io.WriteString(conn, head); err != nil {
		return Streams{}, fmt.Errorf("write hijack response: %w", err)
	}
	var st Streams
	st.Stdout, st.Stderr = outputStreams(conn, tty)
	h.stdout = st.Stdout
	if h.wantStdin {
		// Read the socket itself, not the server's buffered reader: on
		// EOF (the client's CloseWrite) that one cancels the request's
		// context, which must not end the attach.
		var early []byte
		if n := rw.Reader.Buffered(); n > 0 {
			early, _ = rw.Reader.Peek(n)
			early = bytes.Clone(early)
		}
		st.Stdin = &stdinReader{r: io.MultiReader(bytes.NewReader(early), conn), conn: conn}
	}
	return st, nil
}

// context is the context for the backend call of a hijacked request. The
// request's own context is cancelled by the http server when it reads EOF
// on the connection, which for a hijacked stream is only the client's
// CloseWrite; so it is detached and ends with server shutdown instead.
func (h *hijacker) context() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(h.r.Context()))
	go func() {
		select {
		case <-h.s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// started reports whether getStreams has taken the connection.
func (h *hijacker) started() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn != nil
}

// close ends the stream: the client reads EOF once the output is done.
func (h *hijacker) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		h.conn.Close()
		h.untrack()
	}
}

// stdinReader is the client's half of a hijacked connection. The client's
// CloseWrite shows as io.EOF here while output keeps flowing the other way.
type stdinReader struct {
	r    io.Reader
	conn net.Conn

	mu     sync.Mutex
	closed bool
}

func (s *stdinReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		// A closed connection (detach, daemon shutdown) ends stdin too.
		s.mu.Lock()
		closed = s.closed
		s.mu.Unlock()
		if closed || errors.Is(err, net.ErrClosed) {
			return n, io.EOF
		}
	}
	return n, err
}

// Close stops reading stdin; a Read blocked on the socket returns.
func (s *stdinReader) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if cr, ok := s.conn.(interface{ CloseRead() error }); ok {
		cr.CloseRead()
	}
	return nil
}

// progressWriter encodes a backend's JSON messages as the response, one
// object per message terminated by "\r\n", flushed each time. Headers are
// written with the first message, so an error before any output can still
// become a plain JSON error response (import, pull) when the handler wants.
type progressWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

func (p *progressWriter) start() {
	if p.started {
		return
	}
	p.started = true
	p.w.Header().Set("Content-Type", "application/json")
	p.w.WriteHeader(http.StatusOK)
}

// WriteMessage implements Progress.
func (p *progressWriter) WriteMessage(m JSONMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode progress message: %w", err)
	}
	if _, err := p.w.Write(append(b, '\r', '\n')); err != nil {
		return err
	}
	return http.NewResponseController(p.w).Flush()
}

// finish ends the stream after the backend returned err. With
// errorsInStream, or once output has started, an error becomes the
// in-stream {"errorDetail":..,"error":..} message and finish returns nil;
// otherwise err is returned for writeError.
func (p *progressWriter) finish(err error, errorsInStream bool) error {
	p.mu.Lock()
	started := p.started
	if err == nil {
		p.start()
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if !started && !errorsInStream {
		return err
	}
	p.WriteMessage(JSONMessage{Error: err.Error(), ErrorDetail: &ErrorDetail{Message: err.Error()}})
	return nil
}

// lazyWriter starts a 200 response of the given content type on the first
// write, so that an error before any output (an unknown image for save)
// is still answered with its status code.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// finish completes the response after the backend returned err. An error
// after output started aborts the connection, so the client sees a
// truncated transfer instead of a well-formed but partial archive.
func (l *lazyWriter) finish(err error) error {
	if err == nil {
		if !l.started {
			l.Write(nil)
		}
		return nil
	}
	if l.started {
		panic(http.ErrAbortHandler)
	}
	return err
}
