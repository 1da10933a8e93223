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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
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
	// defaultBridge marks the stand-in for the default bridge network
	// that `network connect bridge` joins (see bridgeNet): no DNS.
	defaultBridge bool

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
	v4 := info.IPAM.Config[0]
	cfg := berthnet.Config{
		BridgeName: "br-" + info.ID[:12], Subnet: v4.Subnet, Gateway: v4.Gateway, IPRange: v4.IPRange,
		StateDir: d.userNetDir(info.ID), NetnsDir: filepath.Join(d.cfg.ExecRoot, "netns"),
		Internal: info.Internal,
	}
	for _, c := range info.IPAM.Config[1:] {
		if info.EnableIPv6 && c.Subnet.Addr().Is6() {
			cfg.Subnet6, cfg.Gateway6, cfg.IPRange6 = c.Subnet, c.Gateway, c.IPRange
		}
	}
	for _, c := range info.IPAM.Config {
		for _, a := range c.AuxAddress {
			cfg.Reserved = append(cfg.Reserved, a)
		}
	}
	mgr, err := berthnet.New(cfg)
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

// pickSubnetLocked returns the first /24 of userNetPool that no network
// uses and no host interface is addressed in (another daemon's bridge, a
// VPN): a subnet already routed on the host would be unreachable.
func (d *Daemon) pickSubnetLocked() (netip.Prefix, error) {
	var onHost []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				onHost = append(onHost, p.Masked())
			}
		}
	}
	base := userNetPool.Addr().As4()
next:
	for i := 0; i < 256; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i), 0}), 24)
		for _, h := range onHost {
			if h.Overlaps(p) {
				continue next
			}
		}
		if _, taken := d.subnetTakenLocked(p); !taken {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(fmt.Errorf("no free subnet left in %s", userNetPool))
}

// subnetTakenLocked names the network whose subnet overlaps p.
func (d *Daemon) subnetTakenLocked(p netip.Prefix) (string, bool) {
	if d.net != nil && d.net.Subnet().Overlaps(p) {
		return "the default bridge network's " + d.net.Subnet().String(), true
	}
	for _, n := range d.unets.byID {
		for _, c := range n.info.IPAM.Config {
			if c.Subnet.Overlaps(p) {
				return fmt.Sprintf("network %s's %s", n.info.Name, c.Subnet), true
			}
		}
	}
	return "", false
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
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return network.CreateResponse{}, err
	}
	id := hex.EncodeToString(raw[:])
	plan, err := planSubnets(req, subnetSource{taken: d.subnetTakenLocked, pick4: d.pickSubnetLocked, seed: id})
	if err != nil {
		return network.CreateResponse{}, err
	}
	cfgs := []network.IPAMConfig{plan.v4}
	if plan.v6 != nil {
		cfgs = append(cfgs, *plan.v6)
	}
	labels, opts := req.Labels, req.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	info := network.Inspect{Network: network.Network{
		Name: req.Name, ID: id, Created: time.Now().UTC(), Scope: "local", Driver: "bridge",
		EnableIPv4: true, EnableIPv6: plan.v6 != nil, Internal: req.Internal, Attachable: req.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: cfgs},
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
	d.emitNetwork(id, req.Name, events.ActionCreate, "")
	return network.CreateResponse{ID: id}, nil
}

// containerList snapshots the daemon's containers, so that their locks
// are taken without d.mu held.
func (d *Daemon) containerList() []*Container {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := make([]*Container, 0, len(d.containers))
	for _, c := range d.containers {
		cs = append(cs, c)
	}
	return cs
}

// attachedTo lists the running containers attached to n, as their first
// network or a joined one.
func (d *Daemon) attachedTo(n *userNet) map[string]network.EndpointResource {
	out := map[string]network.EndpointResource{}
	cs := d.containerList()
	for _, c := range cs {
		c.mu.Lock()
		for _, m := range d.userNetsOf(c) {
			if m.netID != n.info.ID || m.ep == nil {
				continue
			}
			out[c.ID] = endpointResource(c, m.ep)
		}
		c.mu.Unlock()
	}
	return out
}

// BridgeInspect completes the API's description of the default bridge
// network with what dockerd shows for it: its subnet and gateway, its
// device, and the running containers on it (as their first network or
// joined with `network connect bridge`).
func (d *Daemon) BridgeInspect(ctx context.Context, n network.Inspect) network.Inspect {
	if d.net == nil {
		return n
	}
	n.IPAM.Config = []network.IPAMConfig{{Subnet: d.net.Subnet(), Gateway: d.net.Gateway()}}
	n.Options = map[string]string{"com.docker.network.bridge.name": d.net.BridgeName(), "com.docker.network.driver.mtu": strconv.Itoa(berthnet.MTU)}
	n.Containers = map[string]network.EndpointResource{}
	cs := d.containerList()
	for _, c := range cs {
		c.mu.Lock()
		ep := c.Endpoint
		if !bridged(c.HostConfig.NetworkMode) {
			ep = nil
			if i := attachmentOf(c, bridgeNetID); i >= 0 {
				ep = c.Networks[i].Endpoint
			}
		}
		if ep != nil {
			n.Containers[c.ID] = endpointResource(c, ep)
		}
		c.mu.Unlock()
	}
	return n
}

// endpointResource is c's entry in a network's Containers; c.mu held.
func endpointResource(c *Container, ep *berthnet.Endpoint) network.EndpointResource {
	er := network.EndpointResource{
		Name: strings.TrimPrefix(c.Name, "/"), EndpointID: c.ID,
		IPv4Address: netip.PrefixFrom(ep.IP, ep.PrefixLen),
	}
	if ep.IP6.IsValid() {
		er.IPv6Address = netip.PrefixFrom(ep.IP6, ep.PrefixLen6)
	}
	if mac, err := net.ParseMAC(ep.MacAddress); err == nil {
		er.MacAddress = network.HardwareAddr(mac)
	}
	return er
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
		if !matchFilter(f["name"], func(v string) bool { return strings.Contains(n.info.Name, v) }) ||
			!matchFilter(f["id"], func(v string) bool { return strings.HasPrefix(n.info.ID, v) }) ||
			!matchFilter(f["driver"], func(v string) bool { return v == "bridge" }) ||
			!matchFilter(f["type"], func(v string) bool { return v == "custom" }) ||
			!matchLabels(f["label"], n.info.Labels) {
			continue
		}
		out = append(out, network.Summary{Network: n.info.Network})
	}
	d.unets.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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
	d.emitNetwork(n.info.ID, n.info.Name, events.ActionDestroy, "")
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
		if !matchLabels(f["label"], n.info.Labels) {
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

var (
	_ api.NetworkBackend   = (*Daemon)(nil)
	_ api.NetworkConnector = (*Daemon)(nil)
)

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
	if err := d.ensureDNS(n, ep.Gateway); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.containerDir(c.ID), "resolv.conf"), embeddedResolvConf(c, ep.Gateway), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf of %s: %w", c.ID[:12], err)
	}
	return nil
}

// dnsLookup answers, for a client on n, the names of the running
// containers on n (name, 12-char and full ID, aliases), then those on the
// client's other user-defined networks, each with its address on the
// network the name was found on. Only names that are valid DNS labels
// (RFC 1123: letters, digits, inner hyphens, at most 63) are answered:
// docker accepts container names like "a_b" or "a.b", but such a name is
// no host name, and one with a dot would shadow a real domain.
func (d *Daemon) dnsLookup(n *userNet) func(netip.Addr, string) []netip.Addr {
	return func(from netip.Addr, name string) []netip.Addr {
		if !dnsLabel(name) {
			return nil
		}
		type member struct {
			name, id, hostname string
			nms                []netMember
		}
		cs := d.containerList()
		ms := make([]member, 0, len(cs))
		nets := []string{n.info.ID}
		for _, c := range cs {
			c.mu.Lock()
			nms, cname := d.userNetsOf(c), c.Name
			var hostname string
			if c.Config != nil {
				hostname = c.Config.Hostname
			}
			c.mu.Unlock()
			ms = append(ms, member{cname, c.ID, hostname, nms})
			for _, m := range nms {
				if m.netID == n.info.ID && m.ep != nil && (m.ep.IP == from || m.ep.IP6 == from) {
					for _, o := range nms {
						if o.netID != n.info.ID {
							nets = append(nets, o.netID)
						}
					}
				}
			}
		}
		for _, netID := range nets {
			for _, mb := range ms {
				for _, m := range mb.nms {
					if m.netID == netID && m.ep != nil && nameMatches(endpointDNSNames(mb.name, mb.id, mb.hostname, m.aliases), mb.id, name) {
						if m.ep.IP6.IsValid() {
							return []netip.Addr{m.ep.IP, m.ep.IP6}
						}
						return []netip.Addr{m.ep.IP}
					}
				}
			}
		}
		return nil
	}
}

// endpointDNSNames are the names a container answers to on a network, in
// dockerd's order (its buildEndpointDNSNames, shown in inspect's
// DNSNames): its name (cname, with its "/"), the network's aliases, its
// short ID and its hostname, each once.
func endpointDNSNames(cname, id, hostname string, aliases []string) []string {
	names := append([]string{strings.TrimPrefix(cname, "/")}, aliases...)
	names = append(names, id[:12])
	if hostname != "" {
		names = append(names, hostname)
	}
	out := names[:0]
	for i, n := range names {
		if n != "" && !slices.Contains(names[:i], n) {
			out = append(out, n)
		}
	}
	return out
}

// containerDNSNames is endpointDNSNames of c with aliases; c.mu held.
func containerDNSNames(c *Container, aliases []string) []string {
	var hostname string
	if c.Config != nil {
		hostname = c.Config.Hostname
	}
	return endpointDNSNames(c.Name, c.ID, hostname, aliases)
}

// nameMatches reports whether name is one of a container's DNS names
// (endpointDNSNames) or its full ID.
func nameMatches(names []string, id, name string) bool {
	return id == name || slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) })
}

// dnsLabel reports whether s is one RFC 1123 host name label.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
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
func networkIP(nc *network.NetworkingConfig, mode container.NetworkMode) (ip4, ip6 netip.Addr, err error) {
	if nc == nil {
		return netip.Addr{}, netip.Addr{}, nil
	}
	builtin := bridged(mode) || mode.IsNone() || mode.IsHost() || mode.IsContainer()
	for name, es := range nc.EndpointsConfig {
		if es == nil || es.IPAMConfig == nil || !es.IPAMConfig.IPv4Address.IsValid() && !es.IPAMConfig.IPv6Address.IsValid() {
			continue
		}
		// the CLI keys the default network "default" while the mode is
		// already "bridge"
		if builtin {
			return netip.Addr{}, netip.Addr{}, errdefs.InvalidParameter(errors.New("user specified IP address is supported on user defined networks only"))
		}
		if name == string(mode) {
			return staticIPs(es.IPAMConfig)
		}
	}
	return netip.Addr{}, netip.Addr{}, nil
}

// staticIPs are the --ip and --ip6 addresses of an endpoint, checked for
// their family.
func staticIPs(c *network.EndpointIPAMConfig) (ip4, ip6 netip.Addr, err error) {
	if c == nil {
		return netip.Addr{}, netip.Addr{}, nil
	}
	if c.IPv4Address.IsValid() && !c.IPv4Address.Is4() {
		return netip.Addr{}, netip.Addr{}, errdefs.InvalidParameter(fmt.Errorf("invalid IPv4 address %s", c.IPv4Address))
	}
	if c.IPv6Address.IsValid() && (!c.IPv6Address.Is6() || c.IPv6Address.Is4In6()) {
		return netip.Addr{}, netip.Addr{}, errdefs.InvalidParameter(fmt.Errorf("invalid IPv6 address %s", c.IPv6Address))
	}
	return c.IPv4Address, c.IPv6Address, nil
}
