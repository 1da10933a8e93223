package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"berth/internal/errdefs"
)

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request, p params) error {
	var req container.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return errdefs.InvalidParameter(errors.New("no exec command specified"))
	}
	id, err := s.backend.ExecCreate(r.Context(), p["name"], &req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request, p params) error {
	var req container.ExecStartRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	opts := ExecStartOptions{Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize}
	if !req.Tty {
		opts.ConsoleSize = nil // no console without a tty
	}
	if req.Detach {
		opts.GetStreams = func(bool) (Streams, error) {
			return Streams{Stdout: discard{}, Stderr: discard{}}, nil
		}
		// A detached exec outlives this request.
		if err := s.backend.ExecStart(context.WithoutCancel(r.Context()), p["id"], opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h := s.newHijacker(w, r, true)
	defer h.close()
	// As dockerd, the start request's Tty decides the framing, whatever
	// the exec was created with: a tty exec started with Tty false is
	// still multiplexed (its output all on stdout).
	opts.GetStreams = func(bool) (Streams, error) { return h.getStreams(req.Tty) }
	ctx, cancel := h.context()
	defer cancel()
	err := s.backend.ExecStart(ctx, p["id"], opts)
	if err != nil && h.started() {
		// As dockerd: the error text goes to the client's stdout, e.g.
		// "OCI runtime exec failed: ... executable file not found".
		fmt.Fprintf(h.stdout, "%s\r\n", err.Error())
		s.log.Debug("exec ended with error", "exec", p["id"], "err", err)
		return nil
	}
	return err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request, p params) error {
	e, err := s.backend.ExecInspect(r.Context(), p["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request, p params) error {
	return resize(w, r, func(ctx context.Context, height, width uint) error {
		return s.backend.ExecResize(ctx, p["id"], height, width)
	})
}
