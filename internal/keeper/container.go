package keeper

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
	"berth/internal/errdefs"
	"berth/internal/jsonlog"
	"berth/internal/runtime"
)

// ctr is one container the keeper holds.
type ctr struct {
	id        string
	tty       bool
	stdinOnce bool

	mu       sync.Mutex
	pid      int
	done     bool
	exitCode int
	exitedAt time.Time
	stdin    io.WriteCloser // pipe to the process, or the pty master
	console  *os.File
	subs     map[*frameWriter]net.Conn
	execs    map[string]*execProc
	log      *jsonlog.Writer
	output   sync.WaitGroup // output readers still draining
	exitCh   chan struct{}  // closed once exited and drained
	// oomFile counts the container's OOM kills; set by resolveOOMFile
	// before it closes cgroupReady.
	oomFile     string
	cgroupReady chan struct{}
	srv         *Server
}

func (c *ctr) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return State{ID: c.id, Pid: c.pid, Running: !c.done, ExitCode: c.exitCode, ExitedAt: c.exitedAt}
}

// pump copies one output stream of the container to its log and to every
// attached client. It closes f at the end when closeAtEnd is set.
func (c *ctr) pump(f *os.File, closeAtEnd bool, stream string, id byte) {
	defer c.output.Done()
	if closeAtEnd {
		defer f.Close()
	}
	r := outputReader{f: f}
	for {
		buf, n, err := r.read()
		if err != nil {
			return
		}
		p := (*buf)[:n]
		now := time.Now()
		if c.log != nil {
			if lerr := c.log.Write(stream, p, now); lerr != nil {
				c.srv.log.Warn("write log", "id", c.id, "err", lerr)
			}
		}
		c.mu.Lock()
		for fw, conn := range c.subs {
			if werr := fw.write(id, p); werr != nil {
				conn.Close()
				delete(c.subs, fw)
			}
		}
		c.mu.Unlock()
		release(buf)
	}
}

func (c *ctr) exited(ws unix.WaitStatus) {
	code := exitCode(ws)
	// In a pid namespace the kernel kills the rest when init dies, so the
	// pipes close; bound the wait for processes outside one (--pid host).
	drained := make(chan struct{})
	go func() { c.output.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	c.mu.Lock()
	c.done, c.exitCode, c.exitedAt = true, code, time.Now()
	for _, conn := range c.subs {
		conn.Close()
	}
	c.subs = map[*frameWriter]net.Conn{}
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
	c.mu.Unlock()
	close(c.exitCh)
	oom := c.oomKilled()
	c.srv.broadcast(Event{Type: "exit", ID: c.id, ExitCode: code, ExitedAt: c.exitedAt, OOMKilled: oom})
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// container. It is read at exit, while the cgroup still exists: the daemon
// deletes it later, and only the cgroup keeps the count.
func (c *ctr) oomKilled() bool {
	if c.cgroupReady == nil {
		return false
	}
	<-c.cgroupReady
	if c.oomFile == "" {
		return false
	}
	n, err := readOOMKills(c.oomFile)
	if err != nil {
		c.srv.log.Debug("read OOM kill count at exit", "id", c.id, "err", err)
		return false
	}
	return n > 0
}

// resolveOOMFile finds the file that counts the container's OOM kills. It
// runs in the background after create, while the container starts and runs:
// loading the spec and the cgroup paths takes about a millisecond, which
// the exit path that `run` waits on should not pay.
func (c *ctr) resolveOOMFile() {
	defer close(c.cgroupReady)
	spec, err := c.srv.rt.Spec(c.id)
	if err != nil || spec.Linux == nil {
		return
	}
	cg, err := cgroups.Load(spec.Linux.CgroupsPath, c.id)
	if err != nil {
		return
	}
	name := "memory.oom_control" // v1: "oom_kill N" (Linux 4.13+)
	if cgroups.IsV2() {
		name = "memory.events"
	}
	c.oomFile = filepath.Join(cg.Path("memory"), name)
}

// readOOMKills reads the "oom_kill N" line of v1's memory.oom_control or
// v2's memory.events: one counter, where Stats would read every statistic
// of every controller.
func readOOMKills(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no oom_kill counter in %s", file)
}

func (c *ctr) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	if c.console != nil {
		c.console.Close()
		c.console = nil
	}
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, errdefs.InvalidParameter(fmt.Errorf("decode create request: %w", err)))
		return
	}
	s.mu.Lock()
	if _, dup := s.containers[req.ID]; dup {
		s.mu.Unlock()
		writeError(w, errdefs.Conflict(fmt.Errorf("keeper: container %s exists", req.ID)))
		return
	}
	c := &ctr{id: req.ID, tty: req.Tty, stdinOnce: req.StdinOnce, subs: map[*frameWriter]net.Conn{},
		execs: map[string]*execProc{}, exitCh: make(chan struct{}), cgroupReady: make(chan struct{}), srv: s}
	s.containers[req.ID] = c
	s.lastActive = time.Now()
	s.mu.Unlock()

	pid, err := s.createProcess(c, req)
	if err != nil {
		s.mu.Lock()
		delete(s.containers, req.ID)
		s.mu.Unlock()
		c.close()
		writeError(w, err)
		return
	}
	go c.resolveOOMFile()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(CreateResponse{Pid: pid})
}

func (s *Server) createProcess(c *ctr, req CreateRequest) (int, error) {
	var err error
	if req.LogPath != "" {
		if c.log, err = jsonlog.NewWriter(req.LogPath, req.LogMaxSize, req.LogMaxFiles); err != nil {
			return 0, err
		}
	}
	var io runtime.IO
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	if req.Tty {
		consoleCh := make(chan *os.File, 1)
		io.OnConsole = func(m *os.File) error { consoleCh <- m; return nil }
		pid, err := s.rt.Create(req.ID, runtime.CreateOpts{Bundle: req.Bundle, IO: io})
		if err != nil {
			return 0, err
		}
		var master *os.File
		select {
		case master = <-consoleCh:
		default:
			return 0, fmt.Errorf("runtime gave no console for %s", req.ID)
		}
		c.console = master
		if req.OpenStdin {
			c.stdin = nopCloser{master}
		}
		c.pid = pid
		c.output.Add(1)
		go c.pump(master, false, "stdout", 1)
		s.track(pid, c)
		return pid, nil
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	closeAfter = append(closeAfter, devnull)
	io.Stdin = devnull
	if req.OpenStdin {
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		closeAfter = append(closeAfter, pr)
		io.Stdin, c.stdin = pr, pw
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	closeAfter = append(closeAfter, outW, errW)
	io.Stdout, io.Stderr = outW, errW
	pid, err := s.rt.Create(req.ID, runtime.CreateOpts{Bundle: req.Bundle, IO: io})
	if err != nil {
		outR.Close()
		errR.Close()
		if c.stdin != nil {
			c.stdin.Close()
		}
		return 0, err
	}
	c.pid = pid
	c.output.Add(2)
	go c.pump(outR, true, "stdout", 1)
	go c.pump(errR, true, "stderr", 2)
	s.track(pid, c)
	return pid, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type nopReadCloser struct{ io.Reader }

func (nopReadCloser) Close() error { return nil }

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	c, err := s.get(r.URL.Query().Get("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.rt.Start(c.id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAttach subscribes a hijacked connection to the container's output
// and, with stdin=1, feeds the connection's bytes to its stdin.
func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.get(q.Get("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done {
		writeError(w, errdefs.Conflict(fmt.Errorf("container %s is not running", c.id)))
		return
	}
	conn, rw, err := hijack(w, c.pid)
	if err != nil {
		return
	}
	fw := &frameWriter{w: conn, raw: c.tty}
	if q.Get("stdout") == "1" {
		fw.mask |= 1 << 1
	}
	if q.Get("stderr") == "1" {
		fw.mask |= 1 << 2
	}
	if q.Get("stdout") == "1" || q.Get("stderr") == "1" {
		c.mu.Lock()
		if c.done {
			conn.Close()
		} else {
			c.subs[fw] = conn
		}
		c.mu.Unlock()
	}
	if q.Get("stdin") == "1" {
		go func() {
			c.mu.Lock()
			in := c.stdin
			c.mu.Unlock()
			if in == nil {
				io.Copy(io.Discard, rw)
				return
			}
			io.Copy(in, rw)
			if c.stdinOnce && !c.tty {
				c.mu.Lock()
				if c.stdin != nil {
					c.stdin.Close()
					c.stdin = nil
				}
				c.mu.Unlock()
			}
		}()
	}
	if q.Get("stdout") != "1" && q.Get("stderr") != "1" {
		// stdin only: the connection ends with the container.
		go func() { <-c.exitCh; conn.Close() }()
	}
}
