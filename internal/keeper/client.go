package keeper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"berth/internal/errdefs"
)

// Client talks to a keeper over its unix socket.
type Client struct {
	sock string
	hc   *http.Client
}

// Dial connects to the keeper at sock, starting one with start when none
// answers (start should launch `berth keeper` detached).
func Dial(ctx context.Context, sock string, start func() error) (*Client, error) {
	c := &Client{sock: sock}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 16,
	}}
	if conn, err := net.Dial("unix", sock); err == nil {
		conn.Close()
		return c, nil
	}
	if start == nil {
		return nil, errdefs.Unavailable(fmt.Errorf("keeper at %s is not running", sock))
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("start keeper: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("keeper did not come up at %s: %w", sock, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// StartProcess launches `exe keeper args...` in its own session, detached
// from the caller, so it outlives the daemon.
func StartProcess(exe string, args []string, logPath string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, append([]string{"keeper"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Reap it if it exits while we live; it normally outlives us.
	go cmd.Wait()
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://keeper" + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return errdefs.Unavailable(fmt.Errorf("keeper: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

func decodeError(resp *http.Response) error {
	var m struct{ Message string }
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		m.Message = string(b)
	}
	err := fmt.Errorf("%s", m.Message)
	switch resp.StatusCode {
	case 404:
		return errdefs.NotFound(err)
	case 400:
		return errdefs.InvalidParameter(err)
	case 409:
		return errdefs.Conflict(err)
	}
	return err
}

// Create starts the container's init (waiting before exec).
func (c *Client) Create(ctx context.Context, req CreateRequest) (int, error) {
	var resp CreateResponse
	err := c.do(ctx, "POST", "/create", nil, req, &resp)
	return resp.Pid, err
}

// Start lets the created container exec its process.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/start", url.Values{"id": {id}}, nil, nil)
}

// Kill signals the container's init (all processes with all).
func (c *Client) Kill(ctx context.Context, id string, sig int, all bool) error {
	q := url.Values{"id": {id}, "signal": {strconv.Itoa(sig)}}
	if all {
		q.Set("all", "1")
	}
	return c.do(ctx, "POST", "/kill", q, nil, nil)
}

// Delete forgets an exited container (force: kill it first).
func (c *Client) Delete(ctx context.Context, id string, force bool) error {
	q := url.Values{"id": {id}}
	if force {
		q.Set("force", "1")
	}
	return c.do(ctx, "POST", "/delete", q, nil, nil)
}

// Resize sets the terminal size of the container (execID "") or an exec.
func (c *Client) Resize(ctx context.Context, id, execID string, h, w uint) error {
	q := url.Values{"id": {id}, "h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}}
	if execID != "" {
		q.Set("exec", execID)
	}
	return c.do(ctx, "POST", "/resize", q, nil, nil)
}

// Stream is a hijacked keeper connection: output frames (or raw tty bytes)
// to read, stdin to write, CloseWrite to send EOF.
type Stream struct {
	net.Conn
	br  *bufio.Reader
	Pid int
}

func (s *Stream) Read(p []byte) (int, error) { return s.br.Read(p) }

// CloseWrite half-closes the connection: the process sees EOF on stdin.
func (s *Stream) CloseWrite() error {
	if uc, ok := s.Conn.(*net.UnixConn); ok {
		return uc.CloseWrite()
	}
	return nil
}

func (c *Client) hijack(ctx context.Context, path string, q url.Values, body any) (*Stream, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("keeper: %w", err))
	}
	var b []byte
	if body != nil {
		if b, err = json.Marshal(body); err != nil {
			conn.Close()
			return nil, err
		}
	}
	req, _ := http.NewRequest("POST", "http://keeper"+path+"?"+q.Encode(), bytes.NewReader(b))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		if resp.StatusCode == http.StatusNoContent {
			return nil, nil
		}
		return nil, decodeError(resp)
	}
	pid, _ := strconv.Atoi(resp.Header.Get(pidHeader))
	return &Stream{Conn: conn, br: br, Pid: pid}, nil
}

// Attach subscribes to the container's output (and stdin when asked).
func (c *Client) Attach(ctx context.Context, id string, stdin, stdout, stderr bool) (*Stream, error) {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return c.hijack(ctx, "/attach", url.Values{"id": {id}, "stdin": {b(stdin)}, "stdout": {b(stdout)}, "stderr": {b(stderr)}}, nil)
}

// Exec starts a process in a container; for a detached exec the stream is nil.
func (c *Client) Exec(ctx context.Context, req ExecRequest) (*Stream, error) {
	return c.hijack(ctx, "/exec", url.Values{}, req)
}

// Events streams keeper events: first a snapshot, then exits. The channel
// closes when the connection ends.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://keeper/events", nil)
	hc := &http.Client{Transport: c.hc.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("keeper events: %w", err))
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e Event
			if err := dec.Decode(&e); err != nil {
				return
			}
			ch <- e
		}
	}()
	return ch, nil
}
