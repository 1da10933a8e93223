package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// pathStatHeader carries a path's stat on HEAD and GET
// /containers/{name}/archive; the docker CLI refuses a response without it.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode path stat: %w", err)
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) containerArchive(w http.ResponseWriter, r *http.Request, p params) error {
	path := r.URL.Query().Get("path")
	switch r.Method {
	case http.MethodHead:
		st, err := s.backend.ContainerStatPath(r.Context(), p["name"], path)
		if err != nil {
			return err
		}
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodGet:
		lw := &lazyWriter{w: w, contentType: "application/x-tar"}
		start := func(st *container.PathStat) error { return setPathStat(w, st) }
		return lw.finish(s.backend.ContainerArchivePath(r.Context(), p["name"], path, start, lw))
	case http.MethodPut:
		opts := ExtractOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
		if err := s.backend.ContainerExtractToDir(r.Context(), p["name"], path, opts, r.Body); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return errMethodNotAllowed{}
}
