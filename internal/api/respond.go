package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// decodeBody decodes a JSON request body into v. An empty body leaves v as
// it is; unknown fields are ignored, as dockerd does.
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	err := json.NewDecoder(r.Body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return errdefs.InvalidParameter(fmt.Errorf("decode request body for %s: %w", r.URL.Path, err))
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

// uintValue reads an unsigned integer query parameter (resize h and w).
func uintValue(r *http.Request, key string) (uint, error) {
	s := strings.TrimSpace(r.URL.Query().Get(key))
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q", key, s))
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
