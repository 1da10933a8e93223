package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"berth/internal/errdefs"
)

// writeError is the one place where errors become HTTP responses: the
// errdefs class gives the status, the body is {"message":...}. 304 has no
// body; HEAD responses never have one.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := errdefs.HTTPStatus(err)
	var mna errMethodNotAllowed
	if errors.As(err, &mna) {
		status = http.StatusMethodNotAllowed
	}
	if status >= 500 {
		s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	body, _ := json.Marshal(map[string]string{"message": err.Error()})
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeJSON answers status with v encoded as JSON plus a newline.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T response: %w", v, err)
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err = w.Write(body)
	return err
}

// noContent answers 204 with no body.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeBody decodes a JSON request body into v, checked the way dockerd
// checks it: a body must come with Content-Type application/json, must be
// one JSON value, and its errors read "invalid JSON: ...". An empty body
// leaves v as it is; unknown fields are ignored.
func decodeBody(r *http.Request, v any) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(r.Body, v)
}

// decodeJSON decodes exactly one JSON value from body; an empty body is
// "invalid JSON: EOF" (what dockerd's create answers).
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %w", err))
	}
	if dec.More() {
		return errdefs.InvalidParameter(errors.New("unexpected content after JSON"))
	}
	return nil
}

// checkJSONContentType accepts a missing Content-Type only without a body.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errdefs.InvalidParameter(fmt.Errorf("unsupported Content-Type header (%s): must be 'application/json'", ct))
	}
	return nil
}

// boolValue reads a query boolean the way dockerd does: "", "0", "no",
// "false" and "none" are false, anything else ("1", "true") is true.
func boolValue(r *http.Request, key string) bool {
	s := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// boolValueOr is boolValue with a default for an absent parameter.
func boolValueOr(r *http.Request, key string, def bool) bool {
	if _, ok := r.URL.Query()[key]; !ok {
		return def
	}
	return boolValue(r, key)
}

// intValue reads an integer query parameter; absent or empty gives def.
func intValue(r *http.Request, key string, def int) (int, error) {
	s := strings.TrimSpace(r.URL.Query().Get(key))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q is not an integer", key, s))
	}
	return n, nil
}

// resize answers a resize request of a TTY: it passes the query's h and
// w to apply and replies 200.
func resize(w http.ResponseWriter, r *http.Request, apply func(ctx context.Context, height, width uint) error) error {
	hgt, err := resizeValue(r, "h")
	if err != nil {
		return err
	}
	wid, err := resizeValue(r, "w")
	if err != nil {
		return err
	}
	if err := apply(r.Context(), hgt, wid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// resizeValue reads the h or w parameter of a resize as a uint32, with
// dockerd's messages: `invalid resize height "x": invalid syntax`.
func resizeValue(r *http.Request, key string) (uint, error) {
	what := map[string]string{"h": "height", "w": "width"}[key]
	raw := r.URL.Query().Get(key)
	s, neg := strings.CutPrefix(raw, "-")
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			err = ne.Err
		}
	} else if neg {
		err = strconv.ErrRange // a valid number, but negative
	}
	if err != nil {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid resize %s %q: %w", what, raw, err))
	}
	return uint(n), nil
}

// parseFilters decodes the filters= query parameter. It accepts the
// map-of-sets form {"label":{"a=b":true}} and the legacy list form
// {"label":["a=b"]}.
func parseFilters(r *http.Request) (Filters, error) {
	raw := strings.TrimSpace(r.URL.Query().Get("filters"))
	if raw == "" {
		return Filters{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filters %q: %w", raw, err))
	}
	f := make(Filters, len(m))
	for k, v := range m {
		set := map[string]bool{}
		var asSet map[string]bool
		if err := json.Unmarshal(v, &asSet); err == nil {
			for val, on := range asSet {
				if on {
					set[val] = true
				}
			}
		} else {
			var asList []string
			if err := json.Unmarshal(v, &asList); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter %q in %q", k, raw))
			}
			for _, val := range asList {
				set[val] = true
			}
		}
		f[k] = set
	}
	return f, nil
}

// parseTimestamp reads a since/until parameter: unix seconds with optional
// fractional nanoseconds ("1795827961", "1795827961.000000000"), or an
// RFC 3339 time. Empty gives the zero time.
func parseTimestamp(key, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	secStr, nsStr, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q is not a timestamp", key, s))
	}
	var ns int64
	if hasFrac {
		if len(nsStr) > 9 {
			nsStr = nsStr[:9]
		}
		nsStr += strings.Repeat("0", 9-len(nsStr))
		if ns, err = strconv.ParseInt(nsStr, 10, 64); err != nil {
			return time.Time{}, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q is not a timestamp", key, s))
		}
	}
	return time.Unix(sec, ns), nil
}

// splitRepoTag splits "repo:tag" where repo may hold a registry port
// ("127.0.0.1:5000/x:t"): the tag is after the last colon that follows the
// last slash. A digest reference is returned unsplit.
func splitRepoTag(ref string) (repo, tag string) {
	if strings.Contains(ref, "@") {
		return ref, ""
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}
