package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	vols, err := s.backend.VolumeList(r.Context(), f)
	if err != nil {
		return err
	}
	if vols == nil {
		vols = []volume.Volume{}
	}
	return writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: vols, Warnings: []string{}})
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	var req volume.CreateRequest
	// an empty body creates an anonymous local volume
	if err := decodeJSON(r.Body, &req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	v, err := s.backend.VolumeCreate(r.Context(), &req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request, p params) error {
	v, err := s.backend.VolumeInspect(r.Context(), p["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.backend.VolumeRemove(r.Context(), p["name"], boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	rep, err := s.backend.VolumePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &volume.PruneReport{}
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
