// Package network gives containers their default bridge network: a Linux
// bridge with a private IPv4 subnet, one veth pair per container whose inner
// end is eth0 in the container's own network namespace, outbound
// masquerade, and published ports as nftables DNAT rules in a table of the
// daemon's own.
//
// Lifecycle, driven by the daemon:
//
//	m := network.New(cfg)           // nothing touches the host yet
//	ep, err := m.Attach(id, ports)  // before the container starts: the bridge and table
//	                                // (first time), a netns bind-mounted at
//	                                // <NetnsDir>/<id>, veth, address, routes, DNAT
//	spec joins ep.NetnsPath         // the runtime enters the prepared namespace
//	m2.Join(id, ep.NetnsPath)       // another network: one more interface (join.go)
//	m2.Leave(id)                    // network disconnect, or before the Detach
//	m.Detach(id)                    // after the exit: rules, veth, netns, address
//	m.Remove()                      // the network goes away: table and bridge
//
// A dual-stack network (Config.Subnet6, ipv6.go) adds IPv6 addresses and
// routes; an internal one (Config.Internal) has no outbound masquerade.
//
// State on disk: <StateDir>/ipam.json (address leases, see ipam; ipam6.json
// for IPv6). Everything else is found again from the kernel: the table by
// name, rules by their user data, veths by a name derived from the
// container ID.
package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Defaults of the default bridge network. The subnet is chosen to stay clear
// of docker's (172.17.0.0/16) and podman's (10.88.0.0/16).
const (
	DefaultBridgeName = "berth0"
	DefaultSubnet     = "10.209.0.0/24"
	// MTU of the bridge and every veth.
	MTU = 1500
)

// Config describes one bridge network.
type Config struct {
	// BridgeName is the bridge device (DefaultBridgeName when empty). The
	// nftables table is named after it: "berth" for the default bridge,
	// "berth-<bridge>" otherwise, so that daemons with different bridges
	// never touch each other's rules.
	BridgeName string
	// Subnet of the bridge (DefaultSubnet when invalid); the bridge takes
	// the first host address, which is every container's gateway.
	Subnet netip.Prefix
	// StateDir holds the IPAM state (e.g. <data-root>/network).
	StateDir string
	// NetnsDir holds the containers' netns bind mounts (<exec-root>/netns).
	NetnsDir string
	// Subnet6 is the IPv6 subnet of a dual-stack network (invalid: IPv4
	// only). The bridge takes its first host address; containers get an
	// address, and a default route when they join it first. Published
	// ports and outbound masquerade cover IPv6 too (nft.go).
	Subnet6 netip.Prefix
	// Internal networks have no outbound masquerade and publish no ports
	// (their containers get no default route either, see Isolate).
	Internal bool
	// Gateway and Gateway6 are the bridge's addresses (invalid: the
	// subnet's first host), anywhere in their subnet (`--gateway`).
	Gateway, Gateway6 netip.Addr
	// IPRange and IPRange6 are the sub-prefixes of the subnets that
	// dynamic addresses come from (invalid: the whole subnet,
	// `--ip-range`); a static address may be anywhere in the subnet.
	IPRange, IPRange6 netip.Prefix
	// Reserved addresses are never leased (`--aux-address`).
	Reserved []netip.Addr
}

// Endpoint is a container's attachment to the bridge.
type Endpoint struct {
	NetnsPath  string
	IP         netip.Addr
	PrefixLen  int
	Gateway    netip.Addr
	MacAddress string
	HostVeth   string
	Ports      []Mapping
	// IP6 is the address on a dual-stack network (zero otherwise).
	IP6        netip.Addr `json:",omitzero"`
	PrefixLen6 int        `json:",omitempty"`
	Gateway6   netip.Addr `json:",omitzero"`
	// Ifname is the interface inside the namespace: eth0 for Attach
	// (empty in records of older daemons), ethN for Join.
	Ifname string `json:",omitempty"`
}

// Manager owns one bridge network. Its methods are safe for concurrent use.
type Manager struct {
	cfg   Config
	table string
	ipam  *ipam
	ipam6 *ipam // nil: IPv4 only
	rules *ruleset

	mu       sync.Mutex
	ready    bool                        // bridge and table are in place
	brIndex  int                         // the bridge's ifindex, once ready
	reserved map[string]reservation      // container ID -> held host ports
	macs     map[string]net.HardwareAddr // container ID -> ReserveMAC's address
	// published are the containers with DNAT rules in the table (those of
	// an earlier daemon run included, read once the table is ready), so
	// that detaching one without any costs no rule listing.
	published map[string]bool

	nlMu sync.Mutex
	nl   *netlink.Handle // rtnetlink in the daemon's namespace, see host
}

// host is a netlink handle on one socket for the daemon's namespace: the
// package-level netlink calls open, bind and close a socket per request,
// which doubles the system calls of a container's network setup.
func (m *Manager) host() *netlink.Handle {
	m.nlMu.Lock()
	defer m.nlMu.Unlock()
	if m.nl == nil {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return &netlink.Handle{} // a socket per request, as the package-level calls
		}
		m.nl = h
	}
	return m.nl
}

// New loads the network's state; the bridge and the nftables table are made
// by the first Attach, so a daemon whose containers never use the bridge
// changes nothing on the host.
func New(cfg Config) (*Manager, error) {
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if len(cfg.BridgeName) > 15 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("bridge name %q is longer than 15 characters", cfg.BridgeName))
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix(DefaultSubnet)
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("bridge subnet %s: an IPv4 subnet of at least 4 addresses is needed", cfg.Subnet))
	}
	cfg.Subnet = cfg.Subnet.Masked()
	if cfg.StateDir == "" || cfg.NetnsDir == "" {
		return nil, errors.New("network: StateDir and NetnsDir are required")
	}
	a, err := loadIPAM(filepath.Join(cfg.StateDir, "ipam.json"), cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if err := a.restrict(cfg.Gateway, cfg.IPRange, cfg.Reserved); err != nil {
		return nil, err
	}
	var a6 *ipam
	if cfg.Subnet6.IsValid() {
		if !cfg.Subnet6.Addr().Is6() || cfg.Subnet6.Bits() > 120 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("IPv6 subnet %s: an IPv6 subnet of at least a /120 is needed", cfg.Subnet6))
		}
		cfg.Subnet6 = cfg.Subnet6.Masked()
		if a6, err = loadIPAM(filepath.Join(cfg.StateDir, "ipam6.json"), cfg.Subnet6); err != nil {
			return nil, err
		}
		if err := a6.restrict(cfg.Gateway6, cfg.IPRange6, cfg.Reserved); err != nil {
			return nil, err
		}
	}
	table := "berth"
	if cfg.BridgeName != DefaultBridgeName {
		table = "berth-" + cfg.BridgeName
	}
	return &Manager{
		cfg: cfg, table: table, ipam: a, ipam6: a6,
		rules:     newRuleset(table, cfg.BridgeName, cfg.Subnet, cfg.Subnet6, cfg.Internal),
		reserved:  map[string]reservation{},
		published: map[string]bool{},
	}, nil
}

// BridgeName is the bridge device's name.
func (m *Manager) BridgeName() string { return m.cfg.BridgeName }

// Table is the name of the network's nftables table (family inet).
func (m *Manager) Table() string { return m.table }

// Subnet is the network's IPv4 subnet.
func (m *Manager) Subnet() netip.Prefix { return m.cfg.Subnet }

// Gateway is the bridge's address.
func (m *Manager) Gateway() netip.Addr { return m.ipam.gateway }

// ensure creates the bridge and installs the table once per daemon run.
func (m *Manager) ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	nl := m.host()
	br, err := nl.LinkByName(m.cfg.BridgeName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", m.cfg.BridgeName, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = m.cfg.BridgeName, MTU
		if err := nl.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create bridge %s: %w", m.cfg.BridgeName, err)
		}
		if br, err = nl.LinkByName(m.cfg.BridgeName); err != nil {
			return fmt.Errorf("look up bridge %s: %w", m.cfg.BridgeName, err)
		}
	}
	// A bridge without an address of its own takes the lowest MAC of its
	// ports, so a new veth could change the gateway's MAC under the
	// containers' ARP caches (their traffic to the gateway, DNS included,
	// would be lost until the entries expire). A set address sticks.
	g4 := m.Gateway().As4()
	if mac := (net.HardwareAddr{0x02, 0x42, g4[0], g4[1], g4[2], g4[3]}); br.Attrs().HardwareAddr.String() != mac.String() {
		if err := nl.LinkSetHardwareAddr(br, mac); err != nil {
			return fmt.Errorf("set the MAC address of bridge %s: %w", m.cfg.BridgeName, err)
		}
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: m.Gateway().AsSlice(), Mask: net.CIDRMask(m.cfg.Subnet.Bits(), 32)}}
	if err := nl.AddrReplace(br, gw); err != nil {
		return fmt.Errorf("address bridge %s with %s: %w", m.cfg.BridgeName, gw, err)
	}
	if m.ipam6 != nil {
		if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", m.cfg.BridgeName, "disable_ipv6"), []byte("0"), 0o644); err != nil {
			return fmt.Errorf("enable IPv6 on %s: %w", m.cfg.BridgeName, err)
		}
		gw6 := v6Addr(m.ipam6.gateway, m.cfg.Subnet6.Bits())
		if err := nl.AddrReplace(br, gw6); err != nil {
			return fmt.Errorf("address bridge %s with %s: %w", m.cfg.BridgeName, gw6, err)
		}
	}
	if err := nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", m.cfg.BridgeName, err)
	}
	// The host reaches published ports on 127.0.0.1: the DNAT in the output
	// chain sends loopback-sourced packets out of the bridge, which the
	// kernel drops as martians unless route_localnet is set on it.
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", m.cfg.BridgeName, "route_localnet"), []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable route_localnet on %s: %w", m.cfg.BridgeName, err)
	}
	if err := m.rules.install(); err != nil {
		return err
	}
	tagged, err := m.rules.tagged()
	if err != nil {
		return err
	}
	for id := range tagged {
		m.published[id] = true
	}
	if err := os.MkdirAll(m.cfg.NetnsDir, 0o710); err != nil {
		return err
	}
	m.brIndex = br.Attrs().Index
	m.ready = true
	return nil
}

// NetnsPath is where id's network namespace is bind-mounted.
func (m *Manager) NetnsPath(id string) string { return filepath.Join(m.cfg.NetnsDir, id) }

func hostVethName(id string) string {
	if len(id) > 11 {
		id = id[:11]
	}
	return "vb" + id
}

// Attach prepares id's network: a netns, a veth pair with eth0 inside, an
// address, a default route via the bridge, and the published ports of
// bindings (see Bindings). A host port already in use is an
// errdefs.Conflict and leaves nothing behind.
func (m *Manager) Attach(id string, bindings network.PortMap) (ep *Endpoint, retErr error) {
	if err := m.ensure(); err != nil {
		return nil, err
	}
	if m.cfg.Internal && len(bindings) > 0 {
		return nil, errdefs.InvalidParameter(errors.New("an internal network publishes no ports: remove -p/-P or use another network"))
	}
	ms, res, err := reserve(bindings, m.ipam6 != nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			res.Close()
			m.cleanup(id)
		}
	}()
	ip, err := m.ipam.Allocate(id)
	if err != nil {
		return nil, err
	}
	ep = &Endpoint{
		NetnsPath: m.NetnsPath(id), IP: ip, PrefixLen: m.cfg.Subnet.Bits(), Gateway: m.Gateway(),
		HostVeth: hostVethName(id), Ports: ms, Ifname: "eth0",
	}
	if err := m.allocate6(id, ep); err != nil {
		return nil, err
	}
	mac := m.macFor(id, ip)
	ep.MacAddress = mac.String()

	removeNetns(ep.NetnsPath) // a leftover of a crash
	if err := createNetns(ep.NetnsPath); err != nil {
		return nil, err
	}
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ep.NetnsPath, err)
	}
	defer ns.Close()
	veth, err := m.addVeth(ep.HostVeth, "eth0", mac, ns)
	if err != nil {
		return nil, fmt.Errorf("create veth %s for container %s: %w", ep.HostVeth, id, err)
	}
	if err := configureInside(ns, ep); err != nil {
		return nil, err
	}
	// Hairpin: with br_netfilter the DNAT of a container's packet to its
	// own published port happens on the bridge, which then has to send it
	// back out of the port it came in by.
	if err := m.host().LinkSetHairpin(veth, true); err != nil {
		return nil, fmt.Errorf("hairpin mode on veth %s: %w", ep.HostVeth, err)
	}
	if err := m.publishReserved(id, ip, ep.IP6, ms, res); err != nil {
		return nil, err
	}
	return ep, nil
}

// publishReserved installs id's port rules for ms, starts the userland
// proxies on the host ports res holds and keeps res as id's reservation,
// closing the one it replaces. On error res is the caller's to close.
func (m *Manager) publishReserved(id string, ip, ip6 netip.Addr, ms []Mapping, res reservation) error {
	if err := m.publish(id, ip, ip6, ms); err != nil {
		return err
	}
	startProxies(ms, res, ip6)
	m.mu.Lock()
	if old := m.reserved[id]; old != nil {
		old.Close()
	}
	m.reserved[id] = res
	m.mu.Unlock()
	return nil
}

// addVeth creates a veth pair, up on the host side and a port of the
// bridge, whose other end is peer in ns. A leftover of a crash with the
// same name is replaced (looked up only when the creation fails: one
// netlink round trip less on every start).
func (m *Manager) addVeth(name, peer string, mac net.HardwareAddr, ns netns.NsHandle) (netlink.Link, error) {
	nl := m.host()
	m.mu.Lock()
	br := m.brIndex
	m.mu.Unlock()
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.MasterIndex, la.Flags = name, MTU, br, net.FlagUp
	veth := &netlink.Veth{LinkAttrs: la, PeerName: peer, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(ns), PeerMTU: MTU}
	err := nl.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		if old, lerr := nl.LinkByName(name); lerr == nil {
			nl.LinkDel(old)
		}
		veth.Index = 0
		err = nl.LinkAdd(veth)
	}
	return veth, err
}

// publish adds id's DNAT rules and records that it has some.
func (m *Manager) publish(id string, ip, ip6 netip.Addr, ms []Mapping) error {
	if len(ms) == 0 {
		return nil
	}
	m.mu.Lock()
	m.published[id] = true
	m.mu.Unlock()
	return m.rules.publish(id, ip, ip6, ms)
}

// unpublish deletes id's DNAT rules. Without any (known once the table is
// ready) it costs nothing.
func (m *Manager) unpublish(id string) error {
	m.mu.Lock()
	if m.ready && !m.published[id] {
		m.mu.Unlock()
		return nil
	}
	delete(m.published, id)
	m.mu.Unlock()
	return m.rules.unpublish(id)
}

// configureInside addresses eth0 in ns, brings it and lo up and routes by
// default via the gateway, through a netlink handle bound to ns (no thread
// switching).
func configureInside(ns netns.NsHandle, ep *Endpoint) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", ep.NetnsPath, err)
	}
	defer h.Close()
	// lo is the first device of every namespace: ifindex 1
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("look up eth0 in netns %s: %w", ep.NetnsPath, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(ep.PrefixLen, 32)}}
	if err := h.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("address eth0 with %s: %w", addr, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bring up eth0: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: ep.Gateway.AsSlice()}); err != nil {
		return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
	}
	if ep.IP6.IsValid() {
		if err := address6(ns, h, eth0, ep, true); err != nil {
			return err
		}
	}
	return nil
}

// Detach undoes Attach: the DNAT rules, the held ports, the veth, the netns
// mount and the address lease. It is idempotent.
func (m *Manager) Detach(id string) error {
	m.unreserve(id)
	return m.cleanup(id)
}

// unreserve closes the host sockets (and proxies) holding id's published
// ports.
func (m *Manager) unreserve(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res := m.reserved[id]; res != nil {
		res.Close()
		delete(m.reserved, id)
	}
}

func (m *Manager) cleanup(id string) error {
	var errs []error
	if err := m.unpublish(id); err != nil {
		errs = append(errs, err)
	}
	// Deleting a veth waits for an RCU grace period (~25 ms), on the path
	// that `run --rm` waits on. Dropping the netns mount instead lets the
	// kernel destroy the namespace, and the veth pair with it, in the
	// background. Without a netns mount (a crash in between) the veth is
	// deleted here.
	_, statErr := os.Stat(m.NetnsPath(id))
	if err := removeNetns(m.NetnsPath(id)); err != nil {
		errs = append(errs, err)
	}
	if statErr != nil {
		errs = append(errs, m.delVeth(hostVethName(id)))
	}
	return errors.Join(append(errs, m.release(id))...)
}

// Remove deletes the network from the host: its nftables table and its
// bridge. Containers must have been detached first.
func (m *Manager) Remove() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	if err := m.rules.remove(); err != nil {
		errs = append(errs, err)
	}
	if br, err := m.host().LinkByName(m.cfg.BridgeName); err == nil {
		if err := m.host().LinkDel(br); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", m.cfg.BridgeName, err))
		}
	}
	m.ready, m.brIndex = false, 0
	clear(m.published)
	m.nlMu.Lock()
	if m.nl != nil {
		m.nl.Close() // a removed network's Manager is dropped: no socket left open
		m.nl = nil
	}
	m.nlMu.Unlock()
	return errors.Join(errs...)
}

// Restore holds again the host ports of a container that kept running
// while the daemon restarted (its rules and netns are still in place), so
// that they keep conflicting with new containers' ports.
func (m *Manager) Restore(id string, ms []Mapping) error {
	var res reservation
	var errs []error
	for _, mp := range ms {
		c, _, err := bind(mp.Proto, mp.HostIP, mp.HostPort)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res = append(res, c)
	}
	if m.ipam6 != nil && len(res) == len(ms) {
		m.ipam6.mu.Lock()
		ip6 := m.ipam6.Leases[id]
		m.ipam6.mu.Unlock()
		startProxies(ms, res, ip6)
	}
	m.mu.Lock()
	if old := m.reserved[id]; old != nil {
		old.Close()
	}
	m.reserved[id] = res
	m.mu.Unlock()
	return errors.Join(errs...)
}
