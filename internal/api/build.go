package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"berth/internal/errdefs"
)

// build serves POST /build, the classic builder (§4.12 of the contract):
// the body is the context tar, the answer the §3.3 stream. Errors before
// the first message keep their status (a parse error is a 400); later ones
// are in-stream, with a failing RUN's exit code in errorDetail.code.
func (s *Server) build(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	opts := BuildOptions{
		Tags:       q["t"],
		Dockerfile: q.Get("dockerfile"),
		NoCache:    boolValue(r, "nocache"),
		Quiet:      boolValue(r, "q"),
		Target:     q.Get("target"),
		Remove:     boolValueOr(r, "rm", true),
		ForceRm:    boolValue(r, "forcerm"),
		Pull:       boolValue(r, "pull"),
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid buildargs %q: %w", v, err))
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid labels %q: %w", v, err))
		}
	}
	http.NewResponseController(w).EnableFullDuplex()
	pw := &progressWriter{w: w}
	err := s.backend.Build(r.Context(), r.Body, opts, pw)
	if err == nil {
		return pw.finish(nil, false)
	}
	pw.mu.Lock()
	started := pw.started
	pw.mu.Unlock()
	if !started {
		return err
	}
	detail := &ErrorDetail{Message: err.Error()}
	var ec BuildExitCoder
	if errors.As(err, &ec) {
		detail.Code = ec.ExitCode()
	}
	pw.WriteMessage(JSONMessage{Error: err.Error(), ErrorDetail: detail})
	return nil
}
