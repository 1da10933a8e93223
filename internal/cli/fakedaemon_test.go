package cli

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
)

// fakeDaemon is a scripted Engine API server on a unix socket. Handlers
// are keyed by "METHOD /path" with the version prefix removed; every
// request is recorded in order so tests can check docker's sequences.
type fakeDaemon struct {
	t        *testing.T
	sock     string
	mu       sync.Mutex
	requests []recorded
	handlers map[string]http.HandlerFunc
	srv      *http.Server
}

type recorded struct {
	Method, Path, Query string
	Body                []byte
}

func (r recorded) String() string { return r.Method + " " + r.Path }

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{t: t, handlers: map[string]http.HandlerFunc{}}
	d.sock = filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve)}
	go func() { _ = d.srv.Serve(l) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

func (d *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	if path == "/_ping" {
		w.Header().Set("Api-Version", "1.47")
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.requests = append(d.requests, recorded{r.Method, path, r.URL.RawQuery, body})
	h := d.match(r.Method, path)
	d.mu.Unlock()
	if h == nil {
		writeError(w, http.StatusNotFound, "page not found: "+r.Method+" "+path)
		return
	}
	h(w, r)
}

// match finds the handler for "METHOD /path"; a handler key may end in
// "*" to match any suffix.
func (d *fakeDaemon) match(method, path string) http.HandlerFunc {
	key := method + " " + path
	if h, ok := d.handlers[key]; ok {
		return h
	}
	for k, h := range d.handlers {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(key, strings.TrimSuffix(k, "*")) {
			return h
		}
	}
	return nil
}

func (d *fakeDaemon) handle(key string, h http.HandlerFunc) { d.handlers[key] = h }

// calls lists "METHOD /path" of the requests so far (pings excluded).
func (d *fakeDaemon) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.requests))
	for i, r := range d.requests {
		out[i] = r.String()
	}
	return out
}

func (d *fakeDaemon) request(key string) (recorded, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.requests {
		if r.String() == key {
			return r, true
		}
	}
	return recorded{}, false
}

// cli returns a Cli talking to the fake daemon with buffered streams.
func (d *fakeDaemon) cli(stdin string) (*Cli, *bytes.Buffer, *bytes.Buffer) {
	d.t.Helper()
	apiClient, err := client.New(client.WithHost("unix://" + d.sock))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { _ = apiClient.Close() })
	var out, errOut bytes.Buffer
	c := NewCli(WithStreams(strings.NewReader(stdin), &out, &errOut), WithAPIClient(apiClient))
	return c, &out, &errOut
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// hijack answers 101 like dockerd and hands the raw connection to fn.
func hijack(w http.ResponseWriter, fn func(conn net.Conn, rw *bufio.ReadWriter)) {
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprint(rw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	_ = rw.Flush()
	fn(conn, rw)
}

// frame encodes one multiplexed stream frame.
func frame(stream byte, payload string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return append(hdr, payload...)
}
