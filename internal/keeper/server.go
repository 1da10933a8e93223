package keeper

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/jsonlog"
	"berth/internal/runtime"
)

// Server is the keeper process's state.
type Server struct {
	rt  *runtime.Runtime
	log *slog.Logger

	mu         sync.Mutex
	containers map[string]*ctr
	byPid      map[int]exitTarget
	early      map[int]unix.WaitStatus // exits reaped before their pid was registered
	listeners  map[chan Event]struct{}
	lastActive time.Time
}

type exitTarget interface{ exited(status unix.WaitStatus) }

// NewServer returns a keeper that creates containers with rt.
func NewServer(rt *runtime.Runtime, log *slog.Logger) *Server {
	return &Server{
		rt: rt, log: log,
		containers: map[string]*ctr{},
		byPid:      map[int]exitTarget{},
		early:      map[int]unix.WaitStatus{},
		listeners:  map[chan Event]struct{}{},
		lastActive: time.Now(),
	}
}

// Serve runs the keeper on l until it has been idle (no containers, no
// daemon connected) for idle, or forever when idle is 0.
func (s *Server) Serve(l net.Listener, idle time.Duration) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	go s.reap()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /create", s.handleCreate)
	mux.HandleFunc("POST /start", s.handleStart)
	mux.HandleFunc("POST /attach", s.handleAttach)
	mux.HandleFunc("POST /exec", s.handleExec)
	mux.HandleFunc("POST /resize", s.handleResize)
	mux.HandleFunc("POST /kill", s.handleKill)
	mux.HandleFunc("POST /delete", s.handleDelete)
	mux.HandleFunc("GET /events", s.handleEvents)
	srv := &http.Server{Handler: mux}
	if idle > 0 {
		go func() {
			for range time.Tick(idle / 4) {
				s.mu.Lock()
				quiet := len(s.containers) == 0 && len(s.listeners) == 0 && time.Since(s.lastActive) > idle
				s.mu.Unlock()
				if quiet {
					s.log.Info("keeper idle, exiting")
					l.Close()
					return
				}
			}
		}()
	}
	err := srv.Serve(l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// reap collects every exited child (containers, execs, and orphans that the
// subreaper inherits) and routes the status to its owner.
func (s *Server) reap() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			s.mu.Lock()
			t, ok := s.byPid[pid]
			if ok {
				delete(s.byPid, pid)
			} else {
				s.early[pid] = ws
			}
			s.mu.Unlock()
			if ok {
				go t.exited(ws)
			}
		}
		<-ch
	}
}

// track registers pid's owner, delivering an exit that was reaped early.
func (s *Server) track(pid int, t exitTarget) {
	s.mu.Lock()
	ws, early := s.early[pid]
	if early {
		delete(s.early, pid)
	} else {
		s.byPid[pid] = t
	}
	s.mu.Unlock()
	if early {
		go t.exited(ws)
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func (s *Server) broadcast(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		select {
		case l <- e:
		default:
			s.log.Warn("event listener too slow, dropping it")
			delete(s.listeners, l)
			close(l)
		}
	}
}

func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(errdefs.HTTPStatus(err))
	json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}

func (s *Server) get(id string) (*ctr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastActive = time.Now()
	c, ok := s.containers[id]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("keeper: no such container: %s", id))
	}
	return c, nil
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch := make(chan Event, 1024)
	s.mu.Lock()
	snap := Event{Type: "snapshot"}
	for _, c := range s.containers {
		snap.Containers = append(snap.Containers, c.state())
	}
	s.listeners[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.listeners[ch]; ok {
			delete(s.listeners, ch)
		}
		s.lastActive = time.Now()
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	fl := w.(http.Flusher)
	if err := enc.Encode(snap); err != nil {
		return
	}
	fl.Flush()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(e); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// hijack answers 101 and returns the raw connection.
func hijack(w http.ResponseWriter, pid int) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("keeper: connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(rw, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n%s: %d\r\n\r\n", pidHeader, pid)
	if err := rw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw, nil
}

func (s *Server) handleResize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h, _ := strconv.Atoi(q.Get("h"))
	wd, _ := strconv.Atoi(q.Get("w"))
	var console *os.File
	if execID := q.Get("exec"); execID != "" {
		c, err := s.get(q.Get("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		c.mu.Lock()
		if e := c.execs[execID]; e != nil {
			console = e.console
		}
		c.mu.Unlock()
	} else {
		c, err := s.get(q.Get("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		console = c.console
	}
	if console != nil {
		if err := unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(wd)}); err != nil {
			writeError(w, fmt.Errorf("resize tty: %w", err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleKill(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.get(q.Get("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	sig, _ := strconv.Atoi(q.Get("signal"))
	if sig == 0 {
		sig = int(unix.SIGKILL)
	}
	c.mu.Lock()
	pid, running := c.pid, !c.done
	c.mu.Unlock()
	if !running || pid <= 0 {
		// pid 0 while the runtime is still creating it: kill(0, sig)
		// would signal the keeper's own process group.
		writeError(w, errdefs.Conflict(fmt.Errorf("container %s is not running", c.id)))
		return
	}
	if q.Get("all") == "1" {
		err = s.rt.Kill(c.id, unix.Signal(sig), true)
	} else if err = unix.Kill(pid, unix.Signal(sig)); err == unix.ESRCH {
		err = nil
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	c, err := s.get(id)
	if err != nil {
		writeError(w, err)
		return
	}
	c.mu.Lock()
	running := !c.done
	c.mu.Unlock()
	if running && r.URL.Query().Get("force") != "1" {
		writeError(w, errdefs.Conflict(fmt.Errorf("container %s is running", id)))
		return
	}
	if err := s.rt.Delete(id, true); err != nil && !errdefs.IsNotFound(err) {
		s.log.Warn("runtime delete", "id", id, "err", err)
	}
	if running {
		<-c.exitCh
	}
	s.mu.Lock()
	delete(s.containers, id)
	s.lastActive = time.Now()
	s.mu.Unlock()
	c.close()
	w.WriteHeader(http.StatusNoContent)
}

// frameWriter writes docker's 8-byte multiplexed frames, or raw bytes for a tty.
type frameWriter struct {
	mu   sync.Mutex
	w    io.Writer
	raw  bool
	mask byte // bit 1<<stream set for each stream wanted; 0 means all
}

func (f *frameWriter) write(stream byte, p []byte) error {
	if f.mask != 0 && f.mask&(1<<stream) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.raw {
		var hdr [8]byte
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
		if _, err := f.w.Write(hdr[:]); err != nil {
			return err
		}
	}
	_, err := f.w.Write(p)
	return err
}

var _ = jsonlog.DefaultMaxSize
