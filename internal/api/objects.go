package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

// notImplemented answers 501 with a message naming the feature.
func notImplemented(feature string) handlerFunc {
	return func(http.ResponseWriter, *http.Request, params) error {
		return errdefs.NotImplemented(fmt.Errorf("%s: not implemented in berth yet", feature))
	}
}

// notSwarmManager answers swarm endpoints as a dockerd outside a swarm does
// (503), which tools read as "swarm mode is off".
func notSwarmManager(http.ResponseWriter, *http.Request, params) error {
	return errdefs.Unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))
}

// builtinNetworks are the three networks every dockerd lists. They stand in
// until networks are implemented, so that `docker network ls` and
// `docker inspect bridge` show the familiar objects.
var builtinNetworks = func() []network.Inspect {
	mk := func(name, driver string) network.Inspect {
		sum := sha256.Sum256([]byte("berth-builtin-network-" + name))
		n := network.Inspect{Network: network.Network{
			Name:       name,
			ID:         hex.EncodeToString(sum[:]),
			Created:    time.Unix(0, 0).UTC(),
			Scope:      "local",
			Driver:     driver,
			EnableIPv4: driver == "bridge",
			IPAM:       network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
			Options:    map[string]string{},
			Labels:     map[string]string{},
		}, Containers: map[string]network.EndpointResource{}}
		return n
	}
	return []network.Inspect{mk("bridge", "bridge"), mk("host", "host"), mk("none", "null")}
}()

func (s *Server) networkList(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	list := []network.Summary{}
	for _, n := range builtinNetworks {
		if !matchAny(f["name"], func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!matchAny(f["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }) ||
			!matchAny(f["driver"], func(v string) bool { return n.Driver == v }) ||
			!matchAny(f["type"], func(v string) bool { return v == "builtin" }) ||
			!matchAny(f["label"], func(string) bool { return false }) { // builtins have no labels
			continue
		}
		list = append(list, network.Summary{Network: n.Network})
	}
	if nb, ok := s.backend.(NetworkBackend); ok && !f["type"]["builtin"] {
		user, err := nb.NetworkList(r.Context(), f)
		if err != nil {
			return err
		}
		list = append(list, user...)
	}
	return writeJSON(w, http.StatusOK, list)
}

// matchAny reports whether the filter set is empty or one value matches.
func matchAny(set map[string]bool, ok func(string) bool) bool {
	if len(set) == 0 {
		return true
	}
	for v := range set {
		if ok(v) {
			return true
		}
	}
	return false
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request, p params) error {
	id := p["id"]
	for _, n := range builtinNetworks {
		if n.Name == id || n.ID == id || (len(id) >= 3 && strings.HasPrefix(n.ID, id)) {
			if bi, ok := s.backend.(BridgeInspector); ok && n.Name == "bridge" {
				n = bi.BridgeInspect(r.Context(), n)
			}
			return writeJSON(w, http.StatusOK, n)
		}
	}
	if nb, ok := s.backend.(NetworkBackend); ok {
		n, err := nb.NetworkInspect(r.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, n)
	}
	return errdefs.NotFound(fmt.Errorf("network %s not found", id))
}

func (s *Server) pluginList(w http.ResponseWriter, r *http.Request, _ params) error {
	return writeJSON(w, http.StatusOK, []struct{}{})
}

func (s *Server) pluginInspect(w http.ResponseWriter, r *http.Request, p params) error {
	return errdefs.NotFound(fmt.Errorf("plugin %q not found", p["name"]))
}
