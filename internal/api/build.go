package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"berth/internal/build"
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
	if p := q.Get("platform"); p != "" {
		if err := build.CheckPlatform(p); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("build platform: %w", err))
		}
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid buildargs %q: %w", v, err))
		}
	}
	if v := r.Header.Get(build.SecretsHeader); v != "" {
		secrets, err := build.DecodeSecrets(v)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		opts.Secrets = secrets
	}
	opts.Explain = r.Header.Get(build.ExplainHeader) == "1"
	opts.Locate = r.Header.Get(build.LocateHeader) == "1"
	opts.NetworkMode = q.Get("networkmode")
	opts.RegistryConfig = r.Header.Get("X-Registry-Config")
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid labels %q: %w", v, err))
		}
	}
	http.NewResponseController(w).EnableFullDuplex()
	defer drainBody(r)
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

// BuildPruneOptions are the parameters of POST /build/prune.
type BuildPruneOptions struct {
	All bool
	// Until keeps what was used within this long (filter until=).
	Until time.Duration
	// KeepStorage stops pruning once the cache is this small
	// (keep-storage, or max-used-space / reserved-space since 1.48).
	KeepStorage int64
}

// buildPrune serves POST /build/prune: {"CachesDeleted":[...],
// "SpaceReclaimed":N}.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	opts := BuildPruneOptions{All: boolValue(r, "all")}
	for _, k := range []string{"keep-storage", "max-used-space", "reserved-space"} {
		v := q.Get(k)
		if v == "" || v == "0" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid %s %q", k, v))
		}
		if opts.KeepStorage == 0 || n < opts.KeepStorage {
			opts.KeepStorage = n
		}
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	for k, vals := range f {
		switch k {
		case "until", "unused-for":
			for v := range vals {
				d, err := parseUntil(v)
				if err != nil {
					return err
				}
				opts.Until = d
			}
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid filter %q for build cache prune", k))
		}
	}
	rep, err := s.backend.BuildCachePrune(r.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// parseUntil reads an until filter: a duration ("24h") or a time, which
// becomes the age it is now.
func parseUntil(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	t, err := parseTimestamp("until", v)
	if err != nil {
		return 0, err
	}
	return max(time.Since(t), 0), nil
}
