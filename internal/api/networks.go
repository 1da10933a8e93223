package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

// NetworkBackend serves user-defined networks; the builtin bridge, host and
// none are answered by the API layer itself. A Backend without it answers
// 501 to network create/rm/prune. Errors: NotFound "network N not found",
// Conflict for a duplicate name or a network in use, Forbidden for the
// builtin names.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkList(ctx context.Context, filters Filters) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context, filters Filters) (*network.PruneReport, error)
}

func (s *Server) networks() (NetworkBackend, error) {
	nb, ok := s.backend.(NetworkBackend)
	if !ok {
		return nil, errdefs.NotImplemented(errors.New("user-defined networks: not implemented by this backend"))
	}
	return nb, nil
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	var req network.CreateRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	res, err := nb.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request, p params) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	for _, n := range builtinNetworks {
		if n.Name == p["id"] || n.ID == p["id"] {
			return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
		}
	}
	if err := nb.NetworkRemove(r.Context(), p["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	rep, err := nb.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// BridgeInspector completes the builtin description of the default bridge
// network (n, a copy) with its address plan and attached containers.
type BridgeInspector interface {
	BridgeInspect(ctx context.Context, n network.Inspect) network.Inspect
}

// NetworkConnector joins containers to user-defined networks and takes them
// off (`network connect`/`disconnect`). Errors: NotFound for an unknown
// network or container, Forbidden for a container already on the network,
// InvalidParameter for a network mode that cannot join (host, none,
// container:) or a container not on the network.
type NetworkConnector interface {
	NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request, p params) error {
	nc, ok := s.backend.(NetworkConnector)
	if !ok {
		return errdefs.NotImplemented(errors.New("network connect: not implemented by this backend"))
	}
	var req network.ConnectRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.InvalidParameter(errors.New("network connect: a container is required"))
	}
	if err := nc.NetworkConnect(r.Context(), p["id"], req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request, p params) error {
	nc, ok := s.backend.(NetworkConnector)
	if !ok {
		return errdefs.NotImplemented(errors.New("network disconnect: not implemented by this backend"))
	}
	var req network.DisconnectRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.InvalidParameter(errors.New("network disconnect: a container is required"))
	}
	if err := nc.NetworkDisconnect(r.Context(), p["id"], req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
