package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	specs "github.com/opencontainers/distribution-spec/specs-go/v1"
)

// pageParams reads the n and last query parameters of a paginated list;
// n < 0 means no limit.
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", newErr("PAGINATION_NUMBER_INVALID", http.StatusBadRequest, "invalid page size n=%q", v)
		}
	}
	return n, q.Get("last"), nil
}

// writeList sends a JSON list and, when more entries follow, the Link
// header for the next page.
func writeList(w http.ResponseWriter, path string, n int, more bool, lastItem string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("registry: encode list: %w", err)
	}
	h := w.Header()
	if more {
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {lastItem}}
		h.Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}

// listTags serves GET /v2/<name>/tags/list[?n=&last=].
func (s *Server) listTags(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	tags, more, err := s.tagPage(rt.name, n, last)
	if err != nil {
		return err
	}
	lastItem := ""
	if len(tags) > 0 {
		lastItem = tags[len(tags)-1]
	}
	return writeList(w, "/v2/"+rt.name+"/tags/list", n, more, lastItem, specs.TagList{Name: rt.name, Tags: tags})
}

// catalog serves GET /v2/_catalog[?n=&last=].
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	n, last, err := pageParams(r)
	if err == nil {
		var repos []string
		var more bool
		repos, more, err = s.repoPage(n, last)
		if err == nil {
			lastItem := ""
			if len(repos) > 0 {
				lastItem = repos[len(repos)-1]
			}
			err = writeList(w, "/v2/_catalog", n, more, lastItem, specs.RepositoryList{Repositories: repos})
		}
	}
	if err != nil {
		writeError(w, err)
	}
}
