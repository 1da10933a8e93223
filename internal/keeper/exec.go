package keeper

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/runtime"
)

// execProc is a process started inside a running container.
type execProc struct {
	c       *ctr
	id      string
	console *os.File
	output  sync.WaitGroup
	conn    net.Conn
}

func (e *execProc) exited(ws unix.WaitStatus) {
	e.output.Wait()
	if e.conn != nil {
		e.conn.Close()
	}
	if e.console != nil {
		e.console.Close()
	}
	e.c.mu.Lock()
	delete(e.c.execs, e.id)
	e.c.mu.Unlock()
	e.c.srv.broadcast(Event{Type: "exec-exit", ID: e.c.id, ExecID: e.id, ExitCode: exitCode(ws)})
}

// handleExec starts a process in a container. Unless detached, the
// connection is hijacked and carries the process's stdio like an attach.
func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) {
	var req ExecRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Process == nil {
		writeError(w, errdefs.InvalidParameter(fmt.Errorf("decode exec request: %v", err)))
		return
	}
	c, err := s.get(req.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	c.mu.Lock()
	running := !c.done
	c.mu.Unlock()
	if !running {
		writeError(w, errdefs.Conflict(fmt.Errorf("container %s is not running", req.ID)))
		return
	}
	e := &execProc{c: c, id: req.ExecID}
	var rio runtime.IO
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		writeError(w, err)
		return
	}
	closeAfter = append(closeAfter, devnull)
	var stdinW io.WriteCloser
	var outR, errR *os.File
	consoleCh := make(chan *os.File, 1)
	switch {
	case req.Process.Terminal:
		rio.OnConsole = func(m *os.File) error { consoleCh <- m; return nil }
	case req.Detach:
		rio.Stdin, rio.Stdout, rio.Stderr = devnull, devnull, devnull
	default:
		rio.Stdin = devnull
		if req.Stdin {
			pr, pw, err := os.Pipe()
			if err != nil {
				writeError(w, err)
				return
			}
			closeAfter = append(closeAfter, pr)
			rio.Stdin, stdinW = pr, pw
		}
		var outW, errW *os.File
		if outR, outW, err = os.Pipe(); err != nil {
			writeError(w, err)
			return
		}
		if errR, errW, err = os.Pipe(); err != nil {
			outR.Close()
			outW.Close()
			writeError(w, err)
			return
		}
		closeAfter = append(closeAfter, outW, errW)
		rio.Stdout, rio.Stderr = outW, errW
	}
	pid, err := s.rt.Exec(req.ID, runtime.ExecOpts{Process: req.Process, IO: rio})
	if err != nil {
		if outR != nil {
			outR.Close()
			errR.Close()
		}
		if stdinW != nil {
			stdinW.Close()
		}
		writeError(w, err)
		return
	}
	if req.Process.Terminal {
		select {
		case e.console = <-consoleCh:
		default:
		}
	}
	c.mu.Lock()
	c.execs[e.id] = e
	c.mu.Unlock()
	if req.Detach {
		s.track(pid, e)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	conn, rw, err := hijack(w, pid)
	if err != nil {
		s.track(pid, e)
		return
	}
	e.conn = conn
	fw := &frameWriter{w: conn, raw: req.Process.Terminal}
	copyOut := func(r io.ReadCloser, id byte) {
		defer e.output.Done()
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 && fw.write(id, buf[:n]) != nil {
				io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				return
			}
		}
	}
	if e.console != nil {
		if req.Height > 0 && req.Width > 0 {
			unix.IoctlSetWinsize(int(e.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(req.Height), Col: uint16(req.Width)})
		}
		e.output.Add(1)
		go copyOut(nopReadCloser{e.console}, 1)
		if req.Stdin {
			go io.Copy(e.console, rw)
		}
	} else {
		e.output.Add(2)
		go copyOut(outR, 1)
		go copyOut(errR, 2)
		if stdinW != nil {
			go func() { io.Copy(stdinW, rw); stdinW.Close() }()
		}
	}
	s.track(pid, e)
}
