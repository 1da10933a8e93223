package daemon

// `network connect` and `network disconnect`. A container's first network
// is its HostConfig.NetworkMode (its namespace, default route and published
// ports come from it, see attachNetwork); the user-defined networks it
// joins later are Container.Networks, in the order they were joined, each
// one more interface (eth1, eth2, ...) in the same namespace. A running
// container joins or leaves at once (hot-plug); a created or stopped one
// records the change, which takes effect at its next start.
//
// Names follow membership: the embedded DNS of every network answers for
// the containers on it, and a container also resolves the names of every
// other network it is on (see dnsLookup). /etc/hosts is not rewritten, as
// with dockerd on user-defined networks.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
	berthnet "berth/internal/network"
)

// NetAttachment is a container's membership of a user-defined network it
// joined with `network connect`.
type NetAttachment struct {
	NetworkID string
	Name      string // the network's name
	Aliases   []string
	// IP is the address asked for with --ip (zero: any).
	IP netip.Addr `json:",omitzero"`
	// IP6 is the address asked for with --ip6 (zero: any).
	IP6 netip.Addr `json:",omitzero"`
	// MAC is the address asked for with --mac-address ("": derived from
	// the IP address).
	MAC string `json:",omitempty"`
	// Endpoint is the interface while the container runs.
	Endpoint *berthnet.Endpoint `json:",omitempty"`
}

// netMember is one of a container's user-network memberships, for DNS and
// inspect.
type netMember struct {
	netID   string
	aliases []string
	ep      *berthnet.Endpoint
}

// userNetID resolves a network mode (a user network's name or ID) to the
// network's ID without d.unets.mu, which inspect and DNS cannot take.
func (d *Daemon) userNetID(mode string) (string, bool) {
	if id, ok := d.unets.ids.Load(mode); ok {
		return id.(string), true
	}
	found := ""
	d.unets.ids.Range(func(_, v any) bool {
		if id := v.(string); id == mode {
			found = id
			return false
		}
		return true
	})
	return found, found != ""
}

// userNetsOf lists c's user-defined networks, the first one first; c.mu held.
func (d *Daemon) userNetsOf(c *Container) []netMember {
	var out []netMember
	if mode := c.HostConfig.NetworkMode; !bridged(mode) && !mode.IsNone() && !mode.IsHost() && !mode.IsContainer() {
		if id, ok := d.userNetID(string(mode)); ok {
			out = append(out, netMember{netID: id, aliases: c.NetworkAliases, ep: c.Endpoint})
		}
	}
	for _, a := range c.Networks {
		if a.NetworkID != bridgeNetID {
			out = append(out, netMember{netID: a.NetworkID, aliases: a.Aliases, ep: a.Endpoint})
		}
	}
	return out
}

// bridgeNetID stands for the default bridge network in NetAttachment.
const bridgeNetID = "bridge"

// bridgeNet is the default bridge as a network to join: its Manager, no
// DNS server, no aliases.
func (d *Daemon) bridgeNet() *userNet {
	return &userNet{info: network.Inspect{Network: network.Network{Name: bridgeNetID, ID: bridgeNetID}}, mgr: d.net, defaultBridge: true}
}

// joinable resolves a network to join by reference: a user-defined one or
// the default bridge.
func (d *Daemon) joinable(ref string) (*userNet, error) {
	if ref == bridgeNetID && d.net != nil {
		return d.bridgeNet(), nil
	}
	return d.findUserNet(ref)
}

// onNetwork reports whether n is c's first network or one it joined; c.mu held.
func onNetwork(c *Container, n *userNet) bool {
	if mode := string(c.HostConfig.NetworkMode); mode == n.info.Name || mode == n.info.ID || n.defaultBridge && bridged(c.HostConfig.NetworkMode) {
		return true
	}
	return attachmentOf(c, n.info.ID) >= 0
}

// attachmentOf is the index of network id in c.Networks (-1: none); c.mu held.
func attachmentOf(c *Container, id string) int {
	for i, a := range c.Networks {
		if a.NetworkID == id {
			return i
		}
	}
	return -1
}

// NetworkConnect joins a container to network ref (user-defined, or the
// default bridge): at once when it runs, at its next start otherwise.
func (d *Daemon) NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error {
	switch ref {
	case "host", "none":
		return errdefs.InvalidParameter(fmt.Errorf("container cannot be connected to the pre-defined network %s", ref))
	}
	n, err := d.joinable(ref)
	if err != nil {
		return err
	}
	c, err := d.Get(req.Container)
	if err != nil {
		return err
	}
	att := &NetAttachment{NetworkID: n.info.ID, Name: n.info.Name}
	if es := req.EndpointConfig; es != nil {
		att.Aliases = append([]string(nil), es.Aliases...)
		if att.IP, att.IP6, err = staticIPs(es.IPAMConfig); err != nil {
			return err
		}
		att.MAC = macOf(es)
	}
	if n.defaultBridge && (att.IP.IsValid() || att.IP6.IsValid() || len(att.Aliases) > 0) {
		return errdefs.InvalidParameter(errors.New("network-scoped aliases and user specified IP addresses are supported on user defined networks only"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := c.HostConfig.NetworkMode
	switch {
	case mode.IsHost():
		return errdefs.InvalidParameter(errors.New("container cannot be disconnected from host network or connected to host network"))
	case mode.IsContainer():
		return errdefs.InvalidParameter(errors.New("container sharing network namespace with another container or host cannot be connected to any other network"))
	case mode.IsNone() && (c.Endpoint == nil || !c.State.Running()):
		return errdefs.InvalidParameter(errors.New("container cannot be connected to multiple networks with one of the networks in private (none) mode"))
	case c.removed || c.removing:
		return errdefs.Conflict(fmt.Errorf("container %s is being removed", c.ID[:12]))
	case c.starting:
		return errdefs.Conflict(fmt.Errorf("container %s is starting: connect it once it runs", c.ID[:12]))
	case onNetwork(c, n):
		return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.Name, "/"), n.info.Name))
	}
	if mode.IsNone() {
		// it left its last network while running (disconnectFirst): n
		// becomes its first network again, in the namespace it kept
		return d.rejoinFirst(c, n, att)
	}
	if c.Endpoint != nil && c.State.Running() {
		if err := d.joinNetwork(c, n, att); err != nil {
			return err
		}
	} else if err := checkStaticIPs(n, att); err != nil {
		// refused now rather than at start
		return err
	}
	c.Networks = append(c.Networks, att)
	if att.Endpoint != nil {
		if err := d.pointResolvConf(c); err != nil {
			d.log.Warn("network connect: resolv.conf", "id", c.ID, "err", err)
		}
	}
	d.emitNetwork(n.info.ID, n.info.Name, events.ActionConnect, c.ID)
	return d.save(c)
}

// rejoinFirst plugs a running container that has only lo left (it was
// disconnected from its last network) into n, which becomes its first
// network, with the default route, as dockerd's reconnect; c.mu held.
func (d *Daemon) rejoinFirst(c *Container, n *userNet, att *NetAttachment) error {
	if err := d.joinNetwork(c, n, att); err != nil {
		return err
	}
	ep := att.Endpoint
	if !n.info.Internal {
		if err := berthnet.DefaultRoute(ep); err != nil {
			d.log.Warn("network connect: default route", "id", c.ID, "err", err)
		}
	}
	c.Endpoint, c.NetworkMAC = ep, att.MAC
	if n.defaultBridge {
		c.HostConfig.NetworkMode = "bridge"
	} else {
		c.HostConfig.NetworkMode = container.NetworkMode(n.info.Name)
		c.NetworkAliases, c.NetworkIP, c.NetworkIP6 = att.Aliases, att.IP, att.IP6
	}
	if err := d.pointResolvConf(c); err != nil {
		d.log.Warn("network connect: resolv.conf", "id", c.ID, "err", err)
	}
	d.emitNetwork(n.info.ID, n.info.Name, events.ActionConnect, c.ID)
	return d.save(c)
}

// checkStaticIPs refuses --ip and --ip6 addresses outside n's subnets.
func checkStaticIPs(n *userNet, att *NetAttachment) error {
	for _, ip := range []netip.Addr{att.IP, att.IP6} {
		if !ip.IsValid() {
			continue
		}
		in := false
		for _, cfg := range n.info.IPAM.Config {
			in = in || cfg.Subnet.Contains(ip)
		}
		if !in {
			return errdefs.InvalidParameter(fmt.Errorf("address %s is not in a subnet of network %s", ip, n.info.Name))
		}
	}
	return nil
}

// joinNetwork hot-plugs c (running, namespace at c.Endpoint.NetnsPath) into
// n and starts n's DNS server; c.mu held.
func (d *Daemon) joinNetwork(c *Container, n *userNet, att *NetAttachment) error {
	if err := reserveEndpoint(n.mgr, c.ID, att.IP, att.IP6, att.MAC); err != nil {
		n.mgr.Leave(c.ID) // the other address's lease
		return fmt.Errorf("connect container %s to network %s: %w", c.ID[:12], n.info.Name, err)
	}
	ep, err := n.mgr.Join(c.ID, c.Endpoint.NetnsPath)
	if err != nil {
		return fmt.Errorf("connect container %s to network %s: %w", c.ID[:12], n.info.Name, err)
	}
	if n.defaultBridge {
		att.Endpoint = ep
		return nil
	}
	if err := d.ensureDNS(n, ep.Gateway); err != nil {
		n.mgr.Leave(c.ID)
		return fmt.Errorf("connect container %s to network %s: %w", c.ID[:12], n.info.Name, err)
	}
	att.Endpoint = ep
	return nil
}

// joinedNets snapshots c's joined networks with their userNets: resolved
// before c.mu is taken, since network removal takes d.unets.mu and then
// containers' locks. A network removed meanwhile is nil.
func (d *Daemon) joinedNets(c *Container) ([]*NetAttachment, []*userNet) {
	c.mu.Lock()
	atts := append([]*NetAttachment(nil), c.Networks...)
	c.mu.Unlock()
	nets := make([]*userNet, len(atts))
	for i, a := range atts {
		ref := a.NetworkID
		if ref == "" {
			ref = a.Name // named at create before it existed
		}
		nets[i], _ = d.joinable(ref)
	}
	return atts, nets
}

// joinNetworks plugs a starting container into the networks it joined
// while stopped, after its first network made the namespace; c.mu not held.
func (d *Daemon) joinNetworks(c *Container) error {
	atts, nets := d.joinedNets(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, att := range atts {
		if nets[i] == nil {
			return errdefs.NotFound(fmt.Errorf("network %s of container %s not found", att.Name, c.ID[:12]))
		}
		if att.NetworkID == "" {
			att.NetworkID, att.Name = nets[i].info.ID, nets[i].info.Name
		}
		if err := d.joinNetwork(c, nets[i], att); err != nil {
			return err
		}
	}
	if len(atts) > 0 && bridged(c.HostConfig.NetworkMode) {
		return d.pointResolvConf(c)
	}
	return nil
}

// leaveNetworks unplugs every joined network (exit, failed start); c.mu not held.
func (d *Daemon) leaveNetworks(c *Container) {
	atts, nets := d.joinedNets(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, att := range atts {
		if att.Endpoint == nil {
			continue
		}
		att.Endpoint = nil
		if nets[i] == nil {
			continue // removed while the container ran: its bridge went with it
		}
		if err := nets[i].mgr.Leave(c.ID); err != nil {
			d.log.Warn("leave network", "id", c.ID, "network", att.Name, "err", err)
		}
	}
}

// NetworkDisconnect takes a container off user-defined network ref. With
// force, a container that no longer exists is no error.
func (d *Daemon) NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error {
	switch ref {
	case "host", "none":
		return errdefs.InvalidParameter(fmt.Errorf("container cannot be disconnected from the pre-defined network %s", ref))
	}
	c, err := d.Get(req.Container)
	if err != nil {
		if req.Force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if ref == bridgeNetID {
		c.mu.Lock()
		joined := attachmentOf(c, bridgeNetID) >= 0
		c.mu.Unlock()
		if !joined {
			return d.disconnectFirst(c, ref, func(mode string) bool { return bridged(container.NetworkMode(mode)) })
		}
	}
	n, err := d.joinable(ref)
	if err != nil {
		if req.Force && errdefs.IsNotFound(err) {
			return d.dropStale(c, ref)
		}
		return err
	}
	c.mu.Lock()
	i := attachmentOf(c, n.info.ID)
	if i < 0 {
		c.mu.Unlock()
		return d.disconnectFirst(c, n.info.Name, func(mode string) bool { return mode == n.info.Name || mode == n.info.ID })
	}
	defer c.mu.Unlock()
	att := c.Networks[i]
	if att.Endpoint != nil {
		if err := n.mgr.Leave(c.ID); err != nil {
			return fmt.Errorf("disconnect container %s from network %s: %w", c.ID[:12], n.info.Name, err)
		}
		att.Endpoint = nil
	}
	c.Networks = append(c.Networks[:i:i], c.Networks[i+1:]...)
	if c.State.Running() {
		if err := d.pointResolvConf(c); err != nil {
			d.log.Warn("network disconnect: resolv.conf", "id", c.ID, "err", err)
		}
	}
	d.emitNetwork(n.info.ID, n.info.Name, events.ActionDisconnect, c.ID)
	return d.save(c)
}

// dropStale forgets c's membership of a network removed meanwhile (by
// name or ID), for `network disconnect -f`: such a container cannot start.
func (d *Daemon) dropStale(c *Container, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.Networks {
		if a.Name == ref || a.NetworkID == ref {
			c.Networks = append(c.Networks[:i:i], c.Networks[i+1:]...)
			return d.save(c)
		}
	}
	return nil
}

// disconnectFirst takes c off its first network, the one is matches. A
// stopped container moves to the first network it joined, or to none. A
// running one hands its namespace over to the first network it joined,
// which gets the default route and publishes the container's ports (the
// same host ports) from then on.
// A running container without another network keeps its namespace with
// only lo, as with dockerd, and is on "none" from then on.
func (d *Daemon) disconnectFirst(c *Container, name string, is func(mode string) bool) error {
	c.mu.Lock()
	mode := c.HostConfig.NetworkMode
	var next *NetAttachment
	if len(c.Networks) > 0 {
		next = c.Networks[0]
	}
	c.mu.Unlock()
	// resolved without c.mu (see joinedNets)
	mgr := d.managerFor(mode)
	internal := false
	var nextMgr *berthnet.Manager
	if next != nil {
		if n, err := d.joinable(next.NetworkID); err == nil {
			internal, nextMgr = n.info.Internal, n.mgr
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !is(string(c.HostConfig.NetworkMode)) {
		return errdefs.InvalidParameter(fmt.Errorf("container %s is not connected to network %s", c.ID[:12], name))
	}
	if c.HostConfig.NetworkMode != mode || len(c.Networks) == 0 && next != nil || len(c.Networks) > 0 && c.Networks[0] != next {
		return errdefs.Conflict(fmt.Errorf("the networks of container %s changed meanwhile: try again", c.ID[:12]))
	}
	if c.starting {
		return errdefs.Conflict(fmt.Errorf("container %s is starting: disconnect it once it runs", c.ID[:12]))
	}
	if c.Endpoint != nil {
		if mgr == nil || next != nil && next.Endpoint == nil {
			return errdefs.Conflict(fmt.Errorf("container %s is running and its networks are not in place: stop it first to disconnect it from %s", c.ID[:12], name))
		}
		ports := c.Endpoint.Ports
		if err := mgr.Unplug(c.ID); err != nil {
			return fmt.Errorf("disconnect container %s from network %s: %w", c.ID[:12], name, err)
		}
		if next == nil {
			// the namespace stays (the container's processes are in it)
			// with lo only; detachNetwork removes its mount at the exit
			c.Endpoint = &berthnet.Endpoint{NetnsPath: c.Endpoint.NetnsPath, Ifname: "lo"}
		} else {
			if !internal {
				if err := berthnet.DefaultRoute(next.Endpoint); err != nil {
					d.log.Warn("network disconnect: default route", "id", c.ID, "err", err)
				}
			}
			if nextMgr != nil {
				if err := nextMgr.Republish(c.ID, next.Endpoint, ports); err != nil {
					d.log.Warn("network disconnect: publish ports on the next network", "id", c.ID, "network", next.Name, "err", err)
				}
			}
			c.Endpoint = next.Endpoint
		}
	}
	if next == nil {
		c.HostConfig.NetworkMode = "none"
		c.NetworkAliases, c.NetworkIP, c.NetworkIP6, c.NetworkMAC = nil, netip.Addr{}, netip.Addr{}, ""
		if c.Endpoint != nil {
			if err := d.pointResolvConf(c); err != nil {
				d.log.Warn("network disconnect: resolv.conf", "id", c.ID, "err", err)
			}
		}
		return d.save(c)
	}
	c.HostConfig.NetworkMode = container.NetworkMode(next.Name)
	c.NetworkAliases, c.NetworkIP, c.NetworkIP6, c.NetworkMAC = next.Aliases, next.IP, next.IP6, next.MAC
	c.Networks = c.Networks[1:]
	if c.Endpoint != nil {
		if err := d.pointResolvConf(c); err != nil {
			d.log.Warn("network disconnect: resolv.conf", "id", c.ID, "err", err)
		}
	}
	return d.save(c)
}

// pointResolvConf aims a running container's resolv.conf at the DNS server
// of its first user-defined network, or back at the host's resolvers when
// it has none left. The file is rewritten in place: the container sees it
// through a bind mount of that inode. c.mu held.
func (d *Daemon) pointResolvConf(c *Container) error {
	if c.Endpoint == nil || len(c.HostConfig.DNS) > 0 {
		return nil // --dns wins, as with dockerd
	}
	var gw netip.Addr
	for _, m := range d.userNetsOf(c) {
		if m.ep != nil {
			gw = m.ep.Gateway
			break
		}
	}
	body := resolvConf(c)
	if gw.IsValid() {
		body = embeddedResolvConf(c, gw)
	}
	p := filepath.Join(d.containerDir(c.ID), "resolv.conf")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	return errors.Join(err, f.Close())
}

// embeddedResolvConf points at a network's DNS server on gw, keeping the
// host's options but not its search domains: a container name must never
// leave the host as "<name>.<search domain>".
func embeddedResolvConf(c *Container, gw netip.Addr) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "nameserver %s\n", gw)
	for _, l := range strings.Split(string(resolvConf(c)), "\n") {
		if strings.HasPrefix(l, "options ") {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}

// ensureDNS starts n's DNS server on its gateway once.
func (d *Daemon) ensureDNS(n *userNet, gw netip.Addr) error {
	n.dnsMu.Lock()
	defer n.dnsMu.Unlock()
	if n.dns != nil {
		return nil
	}
	r := &berthnet.Resolver{Lookup: d.dnsLookup(n), Upstream: hostResolvers(), Log: d.log}
	if err := r.Listen(gw); err != nil {
		return err
	}
	n.dns = r
	return nil
}

// joinedSettings adds c's joined networks to inspect's map; c.mu held.
func (d *Daemon) joinedSettings(c *Container, out map[string]*network.EndpointSettings) {
	for _, a := range c.Networks {
		es := &network.EndpointSettings{NetworkID: a.NetworkID, Aliases: a.Aliases}
		if a.IP.IsValid() || a.IP6.IsValid() {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a.IP, IPv6Address: a.IP6}
		}
		if ep := a.Endpoint; ep != nil {
			es.EndpointID = c.ID
			es.IPAddress, es.IPPrefixLen, es.Gateway = ep.IP, ep.PrefixLen, ep.Gateway
			es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = ep.IP6, ep.PrefixLen6, ep.Gateway6
			es.DNSNames = containerDNSNames(c, a.Aliases)
			if mac, err := net.ParseMAC(ep.MacAddress); err == nil {
				es.MacAddress = network.HardwareAddr(mac)
			}
		}
		out[a.Name] = es
	}
}

// restoreJoined starts again, after a daemon restart, the DNS servers of
// the networks a running container joined.
func (d *Daemon) restoreJoined(c *Container) {
	atts, nets := d.joinedNets(c)
	for i, a := range atts {
		c.mu.Lock()
		ep := a.Endpoint
		c.mu.Unlock()
		if ep == nil || nets[i] == nil || nets[i].defaultBridge {
			continue
		}
		if err := d.ensureDNS(nets[i], ep.Gateway); err != nil {
			d.log.Warn("restart network DNS", "id", c.ID, "network", a.Name, "err", err)
		}
	}
}

// createNetworks turns the endpoints of a create request beyond the
// container's first network (`docker run --network a --network b`) into
// joined networks, as if connected before the start, in name order.
func (d *Daemon) createNetworks(nc *network.NetworkingConfig, mode container.NetworkMode) ([]*NetAttachment, error) {
	if nc == nil {
		return nil, nil
	}
	var names []string
	for name := range nc.EndpointsConfig {
		if name == string(mode) || (bridged(mode) && bridged(container.NetworkMode(name))) {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("container cannot be connected to network %s: its network mode is %s", names[0], mode))
	}
	sort.Strings(names)
	var out []*NetAttachment
	for _, name := range names {
		if bridged(container.NetworkMode(name)) {
			name = bridgeNetID
		}
		att := &NetAttachment{Name: name}
		n, err := d.joinable(name)
		switch {
		case errdefs.IsNotFound(err):
			// as dockerd, which only records the endpoint at create: the
			// network is looked up when the container starts
		case err != nil:
			return nil, err
		case mode == container.NetworkMode(n.info.ID):
			continue
		default:
			att.NetworkID, att.Name = n.info.ID, n.info.Name
		}
		if es := nc.EndpointsConfig[name]; es != nil {
			att.MAC = macOf(es)
		}
		if es := nc.EndpointsConfig[name]; es != nil && (n == nil || !n.defaultBridge) {
			att.Aliases = append([]string(nil), es.Aliases...)
			var err error
			if att.IP, att.IP6, err = staticIPs(es.IPAMConfig); err != nil {
				return nil, err
			}
		}
		out = append(out, att)
	}
	return out, nil
}

// emitNetwork publishes a network event (create, destroy, connect,
// disconnect) with dockerd's attributes; containerID is empty for create
// and destroy.
func (d *Daemon) emitNetwork(id, name string, action events.Action, containerID string) {
	attrs := map[string]string{"name": name, "type": "bridge"}
	if containerID != "" {
		attrs["container"] = containerID
	}
	now := time.Now()
	d.events.publish(events.Message{
		Type: events.NetworkEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// reserveEndpoint hands mgr the addresses asked for container id on it
// (--ip, --ip6, --mac-address; zero ones are left to the network) ahead of
// its Attach or Join.
func reserveEndpoint(mgr *berthnet.Manager, id string, ip4, ip6 netip.Addr, mac string) error {
	for _, ip := range []netip.Addr{ip4, ip6} {
		if !ip.IsValid() {
			continue
		}
		if err := mgr.ReserveIP(id, ip); err != nil {
			return err
		}
	}
	if mac == "" {
		return nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address %s: %w", mac, err))
	}
	return mgr.ReserveMAC(id, hw)
}

// macOf is an endpoint's --mac-address ("" when none).
func macOf(es *network.EndpointSettings) string {
	if len(es.MacAddress) == 0 {
		return ""
	}
	return net.HardwareAddr(es.MacAddress).String()
}

// networkMAC is the --mac-address asked for the container's first network.
func networkMAC(nc *network.NetworkingConfig, mode container.NetworkMode) string {
	if nc == nil {
		return ""
	}
	for name, es := range nc.EndpointsConfig {
		// the CLI keys the default network "default" while the mode is
		// already "bridge"
		if es != nil && (name == string(mode) || bridged(mode) && bridged(container.NetworkMode(name))) {
			return macOf(es)
		}
	}
	return ""
}
