package api

import (
	"net/http"

	"github.com/moby/moby/api/types/registry"
)

// imagePush is POST /images/{name}/push?tag=T with X-Registry-Auth: a
// §3.3 progress stream; a missing image is a JSON error before it.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, p params) error {
	pw := &progressWriter{w: w}
	err := s.backend.ImagePush(r.Context(), p["name"], r.URL.Query().Get("tag"),
		r.Header.Get("X-Registry-Auth"), pw)
	return pw.finish(err, false)
}

// auth is POST /auth {"username","password","serveraddress"}: docker
// login's credential check. The answer always carries IdentityToken, as
// docker's does.
func (s *Server) auth(w http.ResponseWriter, r *http.Request, _ params) error {
	var ac registry.AuthConfig
	if err := decodeJSON(r.Body, &ac); err != nil {
		return err
	}
	res, err := s.backend.RegistryLogin(r.Context(), ac)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		IdentityToken string
		Status        string
	}{res.IdentityToken, res.Status})
}

// distributionInspect is GET /distribution/{name}/json with
// X-Registry-Auth: docker's answer to "what is this on the registry".
func (s *Server) distributionInspect(w http.ResponseWriter, r *http.Request, p params) error {
	res, err := s.backend.DistributionInspect(r.Context(), p["name"], r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
