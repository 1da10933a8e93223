package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

func (s *Server) info(w http.ResponseWriter, r *http.Request, _ params) error {
	info, err := s.backend.Info(r.Context())
	if err != nil {
		return err
	}
	if info == nil {
		info = &system.Info{}
	}
	// Without LocalNodeState the CLI prints an empty swarm block instead
	// of "Swarm: inactive".
	if info.Swarm.LocalNodeState == "" {
		info.Swarm.LocalNodeState = swarm.LocalNodeStateInactive
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, _ params) error {
	v, err := s.backend.Version(r.Context())
	if err != nil {
		return err
	}
	if v == nil {
		v = &system.VersionResponse{}
	}
	// The API versions are the server's to state, not the backend's.
	v.APIVersion = s.opts.Version
	v.MinAPIVersion = s.opts.MinVersion
	for i := range v.Components {
		if v.Components[i].Name == "Engine" {
			if v.Components[i].Details == nil {
				v.Components[i].Details = map[string]string{}
			}
			v.Components[i].Details["ApiVersion"] = s.opts.Version
			v.Components[i].Details["MinAPIVersion"] = s.opts.MinVersion
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request, _ params) error {
	du, err := s.backend.DiskUsage(r.Context())
	if err != nil {
		return err
	}
	if du == nil {
		du = &system.DiskUsage{}
	}
	if legacyShapes(apiVersion(r.Context())) {
		return writeJSON(w, http.StatusOK, diskUsageCompat(du))
	}
	return writeJSON(w, http.StatusOK, du)
}

// events streams GET /events: 200 and headers at once, then past events in
// [since, until], then live ones until until passes or the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	since, err := parseTimestamp("since", q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp("until", q.Get("until"))
	if err != nil {
		return err
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	if !until.IsZero() {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, until)
		defer cancelDeadline()
	}
	past, live, err := s.backend.Events(ctx, since, until, f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	http.NewResponseController(w).Flush()

	send := func(m events.Message) error {
		if !until.IsZero() && eventTime(m).After(until) {
			return nil
		}
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		_, err = fw.Write(append(b, '\n'))
		return err
	}
	for _, m := range past {
		if err := send(m); err != nil {
			return err
		}
	}
	if live == nil || (!until.IsZero() && !until.After(time.Now())) {
		return nil
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if err := send(m); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func eventTime(m events.Message) time.Time {
	if m.TimeNano != 0 {
		return time.Unix(0, m.TimeNano)
	}
	return time.Unix(m.Time, 0)
}
