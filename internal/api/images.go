package api

import (
	"errors"
	"net/http"

	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"berth/internal/errdefs"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	list, err := s.backend.ImageList(r.Context(), boolValue(r, "all"), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, p params) error {
	img, err := s.backend.ImageInspect(r.Context(), p["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, img)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, p params) error {
	h, err := s.backend.ImageHistory(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if h == nil {
		h = []image.HistoryResponseItem{}
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return errdefs.InvalidParameter(errors.New("repository name must have at least one component"))
	}
	if err := s.backend.ImageTag(r.Context(), p["name"], repo, tag); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request, p params) error {
	resp, err := s.backend.ImageDelete(r.Context(), p["name"], boolValue(r, "force"), boolValue(r, "noprune"))
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// imageLoad streams progress; a bad archive is an in-stream error with
// status 200, which is what `docker load` expects.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request, _ params) error {
	http.NewResponseController(w).EnableFullDuplex()
	defer drainBody(r)
	pw := &progressWriter{w: w}
	err := s.backend.ImageLoad(r.Context(), r.Body, boolValue(r, "quiet"), pw)
	return pw.finish(err, true)
}

// imageSave serves GET /images/get?names=a&names=b and GET /images/{name}/get.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, p params) error {
	names := r.URL.Query()["names"]
	if n := p["name"]; n != "" {
		names = []string{n}
	}
	if len(names) == 0 {
		return errdefs.InvalidParameter(errors.New("no image names given"))
	}
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	return lw.finish(s.backend.ImageSave(r.Context(), names, lw))
}

// imageCreate is POST /images/create: an import with fromSrc=-, a pull
// with fromImage=. Errors before any output keep their status code (import
// of a bad tar is a 500 JSON error, a missing manifest a 404).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	pw := &progressWriter{w: w}
	switch {
	case q.Get("fromImage") != "":
		err := s.backend.ImagePull(r.Context(), q.Get("fromImage"), q.Get("tag"), q.Get("platform"),
			r.Header.Get("X-Registry-Auth"), pw)
		return pw.finish(err, false)
	case q.Get("fromSrc") == "-":
		http.NewResponseController(w).EnableFullDuplex()
		defer drainBody(r)
		repo, tag := q.Get("repo"), q.Get("tag")
		if tag == "" {
			repo, tag = splitRepoTag(repo)
		}
		err := s.backend.ImageImport(r.Context(), r.Body, repo, tag, q.Get("message"), q["changes"], pw)
		return pw.finish(err, false)
	case q.Get("fromSrc") != "":
		return errdefs.NotImplemented(errors.New("importing from a URL is not supported; use fromSrc=- and send the archive as the body"))
	}
	return errdefs.InvalidParameter(errors.New("either fromImage or fromSrc is required"))
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	rep, err := s.backend.ImagePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &image.PruneReport{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// commit is POST /commit?container=&repo=&tag=&author=&comment=&changes=&pause=.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, _ params) error {
	// The body is the new image's config; the backend takes its changes
	// from the query, but a malformed body is still refused as dockerd does.
	var cfg container.Config
	if err := decodeBody(r, &cfg); err != nil {
		return err
	}
	q := r.URL.Query()
	pause := q.Get("pause") == "" || boolValue(r, "pause")
	repo, tag := q.Get("repo"), q.Get("tag")
	id, err := s.backend.Commit(r.Context(), q.Get("container"), repo, tag, q.Get("author"),
		q.Get("comment"), q["changes"], pause)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}
