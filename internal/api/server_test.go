package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testServer is a Server on a real unix socket with a fake backend.
type testServer struct {
	sock    string
	fake    *fakeBackend
	srv     *Server
	http    *http.Client
	version string
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "berth-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeBackend()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := New(fake, Options{Version: "1.47", MinVersion: "1.24", Logger: logger, ServerName: "berth/test (linux)"})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	return &testServer{sock: sock, fake: fake, srv: srv, http: hc, version: "v1.47"}
}

// do sends a request through the keep-alive HTTP client and returns the
// status, headers and body.
func (ts *testServer) do(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://api.moby.localhost"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// raw opens a fresh connection and writes req verbatim.
func (ts *testServer) raw(t *testing.T, req string) (*net.UnixConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c.(*net.UnixConn), bufio.NewReader(c)
}

// readHead reads a status line and headers up to the blank line, raw.
func readHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read response head: %v (so far %q)", err, sb.String())
		}
		sb.WriteString(line)
		if line == "\r\n" {
			return sb.String()
		}
	}
}

// createContainer creates a container through the API and returns its ID.
func (ts *testServer) createContainer(t *testing.T, name string, body string) string {
	t.Helper()
	path := "/" + ts.version + "/containers/create"
	if name != "" {
		path += "?name=" + name
	}
	code, _, out := ts.do(t, "POST", path, body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, out)
	}
	var resp struct {
		ID       string `json:"Id"`
		Warnings []string
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func attachReq(version, id, query string, upgrade bool) string {
	h := "POST /" + version + "/containers/" + id + "/attach?" + query + " HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n"
	if upgrade {
		h += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	return h + "\r\n"
}

// readFrames decodes multiplexed frames until EOF.
func readFrames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var frames []string
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return frames
			}
			t.Fatalf("read frame header: %v (frames so far %q)", err, frames)
		}
		if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
			t.Fatalf("bad frame header %x", hdr)
		}
		n := int(hdr[4])<<24 | int(hdr[5])<<16 | int(hdr[6])<<8 | int(hdr[7])
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("read frame payload: %v", err)
		}
		frames = append(frames, fmt.Sprintf("%d:%s", hdr[0], buf))
	}
}

func jsonBody(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// TestHandlerPanicAnswers500: a panicking backend call gives the client a
// 500 with the panic in the message (not an EOF), and the server keeps
// serving on the same connection.
func TestHandlerPanicAnswers500(t *testing.T) {
	ts := startServer(t)
	ts.fake.mu.Lock()
	ts.fake.panicInfo = true
	ts.fake.mu.Unlock()
	code, _, body := ts.do(t, "GET", "/"+ts.version+"/info", "")
	if code != http.StatusInternalServerError || !strings.Contains(body, "Info exploded") {
		t.Fatalf("GET /info with a panicking backend: %d %s", code, body)
	}
	if code, _, _ := ts.do(t, "GET", "/_ping", ""); code != http.StatusOK {
		t.Fatalf("GET /_ping after the panic: %d", code)
	}
}
