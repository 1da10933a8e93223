package daemon

// User-defined bridge networks (`docker network create`). Each one is a
// berth/internal/network Manager of its own: bridge "br-<id12>", a /24 from
// userNetPool unless --subnet says otherwise, IPAM state and a config.json
// under <data-root>/networks/<id>. The bridge and its nftables table appear
// with the first attached container and go away with `network rm`.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"berth/internal/api"
	"berth/internal/errdefs"
	berthnet "berth/internal/network"
)

// userNetPool is split into /24s for networks created without --subnet. It
// stays clear of docker's 172.17/16, podman's 10.88/16, the default bridge
// (10.209.0.0/24) and the ranges the test suites use.
var userNetPool = netip.MustParsePrefix("10.210.0.0/16")

// userNets is the daemon's registry of user-defined networks, loaded from
// disk on first use.
type userNets struct {
	mu     sync.Mutex
	loaded bool
	byID   map[string]*userNet
	// ids maps names to IDs without mu, for inspect, which holds a
	// container's lock (remove takes mu, then containers' locks).
	ids sync.Map
}

// userNet is one user-defined network.
type userNet struct {
	info network.Inspect // persisted; Containers is filled at inspect
	mgr  *berthnet.Manager

	dnsMu sync.Mutex
	dns   *berthnet.Resolver // started by the first attach
}

func (d *Daemon) userNetDir(id string) string {
	return filepath.Join(d.cfg.DataRoot, "networks", id)
}

// loadUserNetsLocked reads every network's config.json once; d.unets.mu held.
func (d *Daemon) loadUserNetsLocked() error {
	if d.unets.loaded {
		return nil
	}
	d.unets.byID = map[string]*userNet{}
	entries, err := os.ReadDir(filepath.Join(d.cfg.DataRoot, "networks"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(d.userNetDir(e.Name()), "config.json"))
		if err != nil {
			d.log.Warn("skip network", "id", e.Name(), "err", err)
			continue
		}
		var info network.Inspect
		if err := json.Unmarshal(b, &info); err != nil {
			d.log.Warn("skip network", "id", e.Name(), "err", err)
			continue
		}
		n, err := d.newUserNet(info)
		if err != nil {
			d.log.Warn("skip network", "id", e.Name(), "err", err)
			continue
		}
		d.unets.byID[info.ID] = n
		d.unets.ids.Store(info.Name, info.ID)
	}
	d.unets.loaded = true
	return nil
}

func (d *Daemon) newUserNet(info network.Inspect) (*userNet, error) {
	if len(info.IPAM.Config) == 0 {
		return nil, fmt.Errorf("network %s has no subnet", info.Name)
	}
	mgr, err := berthnet.New(berthnet.Config{
		BridgeName: "br-" + info.ID[:12], Subnet: info.IPAM.Config[0].Subnet,
		StateDir: d.userNetDir(info.ID), NetnsDir: filepath.Join(d.cfg.ExecRoot, "netns"),
	})
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", info.Name, err)
	}
	return &userNet{info: info, mgr: mgr}, nil
}

// findUserNetLocked resolves a name, full ID or unique ID prefix; d.unets.mu held.
func (d *Daemon) findUserNetLocked(ref string) (*userNet, error) {
	if err := d.loadUserNetsLocked(); err != nil {
		return nil, err
	}
	if n := d.unets.byID[ref]; n != nil {
		return n, nil
	}
	for _, n := range d.unets.byID {
		if n.info.Name == ref {
			return n, nil
		}
	}
	var found *userNet
	for id, n := range d.unets.byID {
		if ref != "" && strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous", ref))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("network %s not found", ref))
	}
	return found, nil
}

func (d *Daemon) findUserNet(ref string) (*userNet, error) {
	d.unets.mu.Lock()
	defer d.unets.mu.Unlock()
	return d.findUserNetLocked(ref)
}

// pickSubnetLocked returns the first /24 of userNetPool no network uses.
func (d *Daemon) pickSubnetLocked() (netip.Prefix, error) {
	base := userNetPool.Addr().As4()
	for i := 0; i < 256; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i), 0}), 24)
		if !d.subnetTakenLocked(p) {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(fmt.Errorf("no free subnet left in %s", userNetPool))
}

func (d *Daemon) subnetTakenLocked(p netip.Prefix) bool {
	for _, n := range d.unets.byID {
		for _, c := range n.info.IPAM.Config {
			if c.Subnet.Overlaps(p) {
				return true
			}
		}
	}
	return false
}

// NetworkCreate creates a bridge network; names of the builtin networks and
// existing ones are a Conflict.
func (d *Daemon) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	if req.Name == "" {
		return network.CreateResponse{}, errdefs.InvalidParameter(errors.New("network name is required"))
	}
	switch req.Name {
	case "bridge", "host", "none", "default":
		return network.CreateResponse{}, errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be created", req.Name))
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return network.CreateResponse{}, errdefs.InvalidParameter(fmt.Errorf("network driver %q is not supported (only bridge)", req.Driver))
	}
	d.unets.mu.Lock()
	defer d.unets.mu.Unlock()
	if err := d.loadUserNetsLocked(); err != nil {
		return network.CreateResponse{}, err
	}
	for _, n := range d.unets.byID {
		if n.info.Name == req.Name {
			return network.CreateResponse{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
		}
	}
	var cfg network.IPAMConfig
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		cfg = req.IPAM.Config[0]
	}
	if !cfg.Subnet.IsValid() {
		p, err := d.pickSubnetLocked()
		if err != nil {
			return network.CreateResponse{}, err
		}
		cfg.Subnet = p
	} else if d.subnetTakenLocked(cfg.Subnet) {
		return network.CreateResponse{}, errdefs.Forbidden(fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space"))
	}
	cfg.Subnet = cfg.Subnet.Masked()
	gw := cfg.Subnet.Addr().Next()
	if cfg.Gateway.IsValid() && cfg.Gateway != gw {
		// berth's IPAM always gives the bridge the subnet's first address
		return network.CreateResponse{}, errdefs.InvalidParameter(fmt.Errorf("gateway %s: only the subnet's first address %s is supported", cfg.Gateway, gw))
	}
	if cfg.IPRange.IsValid() && cfg.IPRange.Masked() != cfg.Subnet {
		return network.CreateResponse{}, errdefs.InvalidParameter(fmt.Errorf("ip-range %s: a range smaller than the subnet is not supported", cfg.IPRange))
	}
	cfg.Gateway, cfg.IPRange = gw, netip.Prefix{}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return network.CreateResponse{}, err
	}
	id := hex.EncodeToString(raw[:])
	labels, opts := req.Labels, req.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	info := network.Inspect{Network: network.Network{
		Name: req.Name, ID: id, Created: time.Now().UTC(), Scope: "local", Driver: "bridge",
		EnableIPv4: true, Internal: req.Internal, Attachable: req.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{cfg}},
		Options: opts, Labels: labels,
	}, Containers: map[string]network.EndpointResource{}}
	n, err := d.newUserNet(info)
	if err != nil {
		return network.CreateResponse{}, err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return network.CreateResponse{}, err
	}
	if err := os.MkdirAll(d.userNetDir(id), 0o700); err != nil {
		return network.CreateResponse{}, fmt.Errorf("create network %s: %w", req.Name, err)
	}
	if err := os.WriteFile(filepath.Join(d.userNetDir(id), "config.json"), b, 0o600); err != nil {
		os.RemoveAll(d.userNetDir(id))
		return network.CreateResponse{}, fmt.Errorf("create network %s: %w", req.Name, err)
	}
	d.unets.byID[id] = n
	d.unets.ids.Store(req.Name, id)
	return network.CreateResponse{ID: id}, nil
}

// attachedTo lists the running containers attached to n.
func (d *Daemon) attachedTo(n *userNet) map[string]network.EndpointResource {
	out := map[string]network.EndpointResource{}
	d.mu.Lock()
	cs := make([]*Container, 0, len(d.containers))
	for _, c := range d.containers {
		cs = append(cs, c)
	}
	d.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		mode := string(c.HostConfig.NetworkMode)
		if (mode == n.info.Name || mode == n.info.ID) && c.Endpoint != nil {
			er := network.EndpointResource{
				Name: strings.TrimPrefix(c.Name, "/"), EndpointID: c.ID,
				IPv4Address: netip.PrefixFrom(c.Endpoint.IP, c.Endpoint.PrefixLen),
			}
			if mac, err := net.ParseMAC(c.Endpoint.MacAddress); err == nil {
				er.MacAddress = network.HardwareAddr(mac)
			}
			out[c.ID] = er
		}
		c.mu.Unlock()
	}
	return out
}

// NetworkInspect describes a user-defined network with its containers.
func (d *Daemon) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	n, err := d.findUserNet(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	info := n.info
	info.Containers = d.attachedTo(n)
	return info, nil
}

// NetworkList lists the user-defined networks matching the filters name,
// id, driver, label and type=custom.
func (d *Daemon) NetworkList(ctx context.Context, f api.Filters) ([]network.Summary, error) {
	d.unets.mu.Lock()
	if err := d.loadUserNetsLocked(); err != nil {
		d.unets.mu.Unlock()
		return nil, err
	}
	var out []network.Summary
	for _, n := range d.unets.byID {
		if !filterMatch(f["name"], func(v string) bool { return strings.Contains(n.info.Name, v) }) ||
			!filterMatch(f["id"], func(v string) bool { return strings.HasPrefix(n.info.ID, v) }) ||
			!filterMatch(f["driver"], func(v string) bool { return v == "bridge" }) ||
			!filterMatch(f["type"], func(v string) bool { return v == "custom" }) ||
			!filterMatch(f["label"], func(v string) bool { return labelMatch(n.info.Labels, v) }) {
			continue
		}
		out = append(out, network.Summary{Network: n.info.Network})
	}
	d.unets.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func filterMatch(set map[string]bool, ok func(string) bool) bool {
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

func labelMatch(labels map[string]string, f string) bool {
	k, v, hasV := strings.Cut(f, "=")
	got, ok := labels[k]
	return ok && (!hasV || got == v)
}

// NetworkRemove deletes a network no running container uses: its bridge,
// nftables table and state.
func (d *Daemon) NetworkRemove(ctx context.Context, ref string) error {
	switch ref {
	case "bridge", "host", "none":
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", ref))
	}
	d.unets.mu.Lock()
	defer d.unets.mu.Unlock()
	n, err := d.findUserNetLocked(ref)
	if err != nil {
		return err
	}
	return d.removeUserNetLocked(n)
}

func (d *Daemon) removeUserNetLocked(n *userNet) error {
	if cs := d.attachedTo(n); len(cs) > 0 {
		var names []string
		for _, c := range cs {
			names = append(names, c.Name)
		}
		sort.Strings(names)
		return errdefs.Conflict(fmt.Errorf("error while removing network: network %s has active endpoints (%s)", n.info.Name, strings.Join(names, ", ")))
	}
	n.dnsMu.Lock()
	if n.dns != nil {
		n.dns.Close()
		n.dns = nil
	}
	n.dnsMu.Unlock()
	if err := n.mgr.Remove(); err != nil {
		return fmt.Errorf("remove network %s: %w", n.info.Name, err)
	}
	if err := os.RemoveAll(d.userNetDir(n.info.ID)); err != nil {
		return fmt.Errorf("remove network %s: %w", n.info.Name, err)
	}
	delete(d.unets.byID, n.info.ID)
	d.unets.ids.Delete(n.info.Name)
	return nil
}

// NetworkPrune removes every user-defined network without running
// containers (the label filter narrows it).
func (d *Daemon) NetworkPrune(ctx context.Context, f api.Filters) (*network.PruneReport, error) {
	d.unets.mu.Lock()
	defer d.unets.mu.Unlock()
	if err := d.loadUserNetsLocked(); err != nil {
		return nil, err
	}
	rep := &network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range d.unets.byID {
		if !filterMatch(f["label"], func(v string) bool { return labelMatch(n.info.Labels, v) }) {
			continue
		}
		if len(d.attachedTo(n)) > 0 {
			continue
		}
		if err := d.removeUserNetLocked(n); err != nil {
			d.log.Warn("prune network", "name", n.info.Name, "err", err)
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.info.Name)
	}
	return rep, nil
}

var _ api.NetworkBackend = (*Daemon)(nil)

// networkAliases picks the --network-alias values of the container's network.
func networkAliases(nc *network.NetworkingConfig, mode container.NetworkMode) []string {
	if nc == nil {
		return nil
	}
	if es := nc.EndpointsConfig[string(mode)]; es != nil {
		return append([]string(nil), es.Aliases...)
	}
	return nil
}

// userNetAttached runs after a container joined user-defined network ref:
// it starts the network's DNS server on the gateway (once) and points the
// container's resolv.conf at it. The resolv.conf keeps the host's options
// but not its search domains: a container name must never leave the host
// as "<name>.<search domain>".
func (d *Daemon) userNetAttached(c *Container, ref string, ep *berthnet.Endpoint) error {
	n, err := d.findUserNet(ref)
	if err != nil {
		return err
	}
	if n.info.Internal {
		if err := berthnet.Isolate(ep); err != nil {
			return err
		}
	}
	n.dnsMu.Lock()
	if n.dns == nil {
		r := &berthnet.Resolver{Lookup: d.dnsLookup(n), Upstream: hostResolvers(), Log: d.log}
		if err := r.Listen(ep.Gateway); err != nil {
			n.dnsMu.Unlock()
			return err
		}
		n.dns = r
	}
	n.dnsMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "nameserver %s\n", ep.Gateway)
	for _, l := range strings.Split(string(resolvConf(c)), "\n") {
		if strings.HasPrefix(l, "options ") {
			b.WriteString(l + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(d.containerDir(c.ID), "resolv.conf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf of %s: %w", c.ID[:12], err)
	}
	return nil
}

// dnsLookup answers names of the running containers on n: name, 12-char
// and full ID, aliases.
func (d *Daemon) dnsLookup(n *userNet) func(string) (netip.Addr, bool) {
	return func(name string) (netip.Addr, bool) {
		d.mu.Lock()
		cs := make([]*Container, 0, len(d.containers))
		for _, c := range d.containers {
			cs = append(cs, c)
		}
		d.mu.Unlock()
		for _, c := range cs {
			c.mu.Lock()
			mode := string(c.HostConfig.NetworkMode)
			ep := c.Endpoint
			match := strings.EqualFold(strings.TrimPrefix(c.Name, "/"), name) || c.ID[:12] == name || c.ID == name
			for _, a := range c.NetworkAliases {
				match = match || strings.EqualFold(a, name)
			}
			c.mu.Unlock()
			if match && ep != nil && (mode == n.info.Name || mode == n.info.ID) {
				return ep.IP, true
			}
		}
		return netip.Addr{}, false
	}
}

// hostResolvers lists the host's non-loopback nameservers as "ip:53".
func hostResolvers() []string {
	b, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && !ip.IsLoopback() {
				out = append(out, netip.AddrPortFrom(ip, 53).String())
			}
		}
	}
	return out
}

// networkIP is the --ip address asked for the container's network; like
// dockerd, only user-defined networks accept one.
func networkIP(nc *network.NetworkingConfig, mode container.NetworkMode) (netip.Addr, error) {
	if nc == nil {
		return netip.Addr{}, nil
	}
	builtin := bridged(mode) || mode.IsNone() || mode.IsHost() || mode.IsContainer()
	for name, es := range nc.EndpointsConfig {
		if es == nil || es.IPAMConfig == nil || !es.IPAMConfig.IPv4Address.IsValid() {
			continue
		}
		// the CLI keys the default network "default" while the mode is
		// already "bridge"
		if builtin {
			return netip.Addr{}, errdefs.InvalidParameter(errors.New("user specified IP address is supported on user defined networks only"))
		}
		if name == string(mode) {
			return es.IPAMConfig.IPv4Address, nil
		}
	}
	return netip.Addr{}, nil
}
