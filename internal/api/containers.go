package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	// As dockerd, an empty body is "invalid JSON: EOF" and a body without
	// a Config is refused by the backend ("config cannot be empty").
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	var req container.CreateRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	if err := s.checkCreateRequest(r, &req); err != nil {
		return err
	}
	resp, err := s.backend.ContainerCreate(r.Context(), r.URL.Query().Get("name"), &req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request, p params) error {
	if cp := r.URL.Query().Get("checkpoint"); cp != "" {
		if !validObjectName.MatchString(cp) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid checkpoint ID %q, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", cp))
		}
		return errdefs.NotImplemented(errors.New("starting from a checkpoint: not implemented in berth yet"))
	}
	if err := s.backend.ContainerStart(r.Context(), p["name"]); err != nil {
		return err
	}
	return noContent(w)
}

// stopParams reads signal= and t= of stop and restart; no t means the
// container's (or daemon's) default timeout.
func stopParams(r *http.Request) (string, *int, error) {
	q := r.URL.Query()
	var timeout *int
	if t := q.Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return "", nil, errdefs.InvalidParameter(fmt.Errorf("invalid value for t: %q is not an integer", t))
		}
		timeout = &n
	}
	return q.Get("signal"), timeout, nil
}

// Stop and restart run to their end even when the client goes away, as in
// dockerd: a cancelled request must not leave a container half-stopped
// (or stopped but not started again).
func (s *Server) containerStop(w http.ResponseWriter, r *http.Request, p params) error {
	sig, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	if err := s.backend.ContainerStop(context.WithoutCancel(r.Context()), p["name"], sig, timeout); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request, p params) error {
	sig, timeout, err := stopParams(r)
	if err != nil {
		return err
	}
	if err := s.backend.ContainerRestart(context.WithoutCancel(r.Context()), p["name"], sig, timeout); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.backend.ContainerKill(r.Context(), p["name"], r.URL.Query().Get("signal")); err != nil {
		return err
	}
	return noContent(w)
}

// waitHeaderDelay bounds how long wait holds its headers back to learn
// whether the container exists. docker run sends start only after the wait
// headers arrive, so a backend that blocked here must not deadlock it.
const waitHeaderDelay = 200 * time.Millisecond

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request, p params) error {
	cond := container.WaitConditionNotRunning
	switch c := r.URL.Query().Get("condition"); c {
	case "", string(container.WaitConditionNotRunning):
	case string(container.WaitConditionNextExit), string(container.WaitConditionRemoved):
		cond = container.WaitCondition(c)
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", c))
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()

	type result struct {
		ch  <-chan container.WaitResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := s.backend.ContainerWait(ctx, p["name"], cond)
		done <- result{ch, err}
	}()
	headersSent := false
	sendHeaders := func() {
		headersSent = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(waitHeaderDelay):
		sendHeaders()
		res = <-done
	}
	if res.err != nil && !headersSent {
		return res.err
	}
	if !headersSent {
		sendHeaders()
	}
	var resp container.WaitResponse
	if res.err != nil {
		resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: res.err.Error()}}
	} else {
		select {
		case v, ok := <-res.ch:
			if !ok {
				resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without a result"}}
			} else {
				resp = v
			}
		case <-ctx.Done():
			return nil // the client went away (run -d) or the server stops
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode wait response: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	if err := checkDetachKeys(q.Get("detachKeys")); err != nil {
		return err
	}
	h := s.newHijacker(w, r, boolValue(r, "stdin"))
	defer h.close()
	opts := AttachOptions{
		Stdin:      boolValue(r, "stdin"),
		Stdout:     boolValue(r, "stdout"),
		Stderr:     boolValue(r, "stderr"),
		Stream:     boolValue(r, "stream"),
		Logs:       boolValue(r, "logs"),
		DetachKeys: q.Get("detachKeys"),
		GetStreams: h.getStreams,
	}
	ctx, cancel := h.context()
	defer cancel()
	err := s.backend.ContainerAttach(ctx, p["name"], opts)
	if err != nil && h.started() {
		s.log.Warn("attach ended with error", "container", p["name"], "err", err)
		return nil
	}
	return err
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	opts := LogsOptions{
		Stdout:     boolValue(r, "stdout"),
		Stderr:     boolValue(r, "stderr"),
		Follow:     boolValue(r, "follow"),
		Timestamps: boolValue(r, "timestamps"),
		Tail:       -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidParameter(errors.New("you must choose at least one stream"))
	}
	var err error
	if opts.Since, err = parseTimestamp("since", q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseTimestamp("until", q.Get("until")); err != nil {
		return err
	}
	if t := strings.TrimSpace(q.Get("tail")); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			// dockerd treats a bad tail as "all".
			n = -1
		}
		opts.Tail = n
	}
	started := false
	opts.GetStreams = func(tty bool) (Streams, error) {
		if started {
			return Streams{}, errors.New("log streams were already taken")
		}
		started = true
		ct := mediaMultiplexedStream
		if tty {
			ct = mediaRawStream
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		var st Streams
		st.Stdout, st.Stderr = outputStreams(flushWriter{w}, tty)
		return st, nil
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	err = s.backend.ContainerLogs(ctx, p["name"], opts)
	if err != nil && started {
		s.log.Debug("logs stream ended with error", "container", p["name"], "err", err)
		return nil
	}
	if err == nil && !started {
		w.WriteHeader(http.StatusOK)
	}
	return err
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request, p params) error {
	return resize(w, r, func(ctx context.Context, height, width uint) error {
		return s.backend.ContainerResize(ctx, p["name"], height, width)
	})
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request, p params) error {
	if boolValue(r, "link") {
		return errdefs.InvalidParameter(errors.New("container links are not supported"))
	}
	if err := s.backend.ContainerRemove(r.Context(), p["name"], boolValue(r, "force"), boolValue(r, "v")); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.backend.ContainerRename(r.Context(), p["name"], r.URL.Query().Get("name")); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.backend.ContainerPause(r.Context(), p["name"]); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.backend.ContainerUnpause(r.Context(), p["name"]); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request, p params) error {
	top, err := s.backend.ContainerTop(r.Context(), p["name"], r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, top)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request, p params) error {
	c, err := s.backend.ContainerInspect(r.Context(), p["name"], boolValue(r, "size"))
	if err != nil {
		return err
	}
	c = inspectCompat(c)
	if legacyShapes(apiVersion(r.Context())) {
		return writeJSON(w, http.StatusOK, inspectLegacy(c))
	}
	return writeJSON(w, http.StatusOK, c)
}

// inspectCompat fills the sub-objects the docker CLI dereferences without
// checking (a missing Config made `docker logs` panic, a missing State
// `docker attach`, missing NetworkSettings `docker port`).
func inspectCompat(c *container.InspectResponse) *container.InspectResponse {
	if c == nil {
		c = &container.InspectResponse{}
	}
	if c.State == nil {
		c.State = &container.State{}
	}
	if c.Config == nil {
		c.Config = &container.Config{}
	}
	if c.HostConfig == nil {
		c.HostConfig = &container.HostConfig{}
	}
	if c.NetworkSettings == nil {
		c.NetworkSettings = &container.NetworkSettings{}
	}
	if c.NetworkSettings.Networks == nil {
		c.NetworkSettings.Networks = map[string]*network.EndpointSettings{}
	}
	if c.Mounts == nil {
		c.Mounts = []container.MountPoint{}
	}
	if c.Name != "" && !strings.HasPrefix(c.Name, "/") {
		c.Name = "/" + c.Name
	}
	return c
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", -1)
	if err != nil {
		return err
	}
	list, err := s.backend.ContainerList(r.Context(), boolValue(r, "all"), limit, boolValue(r, "size"), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	version := apiVersion(r.Context())
	for i := range list {
		c := &list[i]
		// Fields added to the summary later than the request's version.
		if compareVersions(version, "1.46") < 0 {
			c.HostConfig.Annotations = nil
		}
		if compareVersions(version, "1.52") < 0 {
			c.Health = nil
		}
		// The CLI cuts the first character of each name: it must be "/".
		for j, n := range c.Names {
			if !strings.HasPrefix(n, "/") {
				c.Names[j] = "/" + n
			}
		}
		if c.Ports == nil {
			c.Ports = []container.PortSummary{}
		}
		if c.Mounts == nil {
			c.Mounts = []container.MountPoint{}
		}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, p params) error {
	stream := boolValueOr(r, "stream", true)
	oneShot := boolValue(r, "one-shot")
	if oneShot && stream {
		return errdefs.InvalidParameter(errors.New("cannot have stream=true and one-shot=true"))
	}
	started := false
	opts := StatsOptions{
		Stream:  stream,
		OneShot: oneShot,
		Out: func(st *container.StatsResponse) error {
			if !started {
				started = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
			}
			b, err := json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encode stats: %w", err)
			}
			_, err = flushWriter{w}.Write(append(b, '\n'))
			return err
		},
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	err := s.backend.ContainerStats(ctx, p["name"], opts)
	if err != nil && started {
		return nil // the client stopped reading or the container went away
	}
	if err == nil && !started {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	}
	return err
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request, p params) error {
	var u container.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	if compareVersions(apiVersion(r.Context()), "1.40") < 0 {
		u.PidsLimit = nil // not updatable before 1.40
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		// 0 and any negative value mean "unlimited" when updating.
		var unlimited int64
		u.PidsLimit = &unlimited
	}
	resp, err := s.backend.ContainerUpdate(r.Context(), p["name"], &u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	rep, err := s.backend.ContainerPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &container.PruneReport{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request, p params) error {
	ch, err := s.backend.ContainerChanges(r.Context(), p["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ch)
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request, p params) error {
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	return lw.finish(s.backend.ContainerExport(r.Context(), p["name"], lw))
}
