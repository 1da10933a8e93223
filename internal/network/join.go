package network

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A container joins further networks (`network connect`) with one more
// interface in the namespace its first network's Attach made: Join adds a
// veth whose inner end is the next free ethN, addressed on this network's
// subnet, without a default route (the first network keeps it, as with
// dockerd's default gateway choice) and without published ports. Leave
// deletes that veth; the namespace stays with its first network.
//
// The host end is named "vx" + 8 characters of the container ID + 4 hex
// digits of the bridge name, so that Leave finds it again after a daemon
// restart and two networks' interfaces of one container never clash.

// joinVethName is the host end of id's interface on bridge.
func joinVethName(id, bridge string) string {
	if len(id) > 8 {
		id = id[:8]
	}
	h := fnv.New32a()
	h.Write([]byte(bridge))
	return fmt.Sprintf("vx%s%04x", id, h.Sum32()&0xffff)
}

// Join connects the existing namespace nsPath of container id to this
// network. The address comes from ReserveIP when one was reserved, else
// from the pool.
func (m *Manager) Join(id, nsPath string) (ep *Endpoint, retErr error) {
	if err := m.ensure(); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			m.Leave(id)
		}
	}()
	ip, err := m.ipam.Allocate(id)
	if err != nil {
		return nil, err
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in netns %s: %w", nsPath, err)
	}
	defer h.Close()
	ifname, err := nextIfname(h)
	if err != nil {
		return nil, fmt.Errorf("name an interface in netns %s: %w", nsPath, err)
	}
	ep = &Endpoint{
		NetnsPath: nsPath, IP: ip, PrefixLen: m.cfg.Subnet.Bits(), Gateway: m.Gateway(),
		HostVeth: joinVethName(id, m.cfg.BridgeName), Ifname: ifname,
	}
	if err := m.allocate6(id, ep); err != nil {
		return nil, err
	}
	mac := m.macFor(id, ip)
	ep.MacAddress = mac.String()
	if _, err := m.addVeth(ep.HostVeth, ifname, mac, ns); err != nil {
		return nil, fmt.Errorf("create veth %s for container %.12s: %w", ep.HostVeth, id, err)
	}
	link, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("look up %s in netns %s: %w", ifname, nsPath, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ep.PrefixLen, 32)}}
	if err := h.AddrAdd(link, addr); err != nil {
		return nil, fmt.Errorf("address %s with %s: %w", ifname, addr, err)
	}
	if ep.IP6.IsValid() {
		if err := address6(ns, h, link, ep, false); err != nil {
			return nil, err
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", ifname, err)
	}
	return ep, nil
}

// nextIfname is the lowest ethN not in use in h's namespace.
func nextIfname(h *netlink.Handle) (string, error) {
	links, err := h.LinkList()
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, l := range links {
		used[l.Attrs().Name] = true
	}
	for i := 0; i < 1000; i++ {
		if n := fmt.Sprintf("eth%d", i); !used[n] {
			return n, nil
		}
	}
	return "", errors.New("no free ethN name")
}

// Leave undoes Join: the veth (with its inner end) and the address lease.
// It is idempotent; a veth already gone with its namespace is no error.
func (m *Manager) Leave(id string) error {
	return errors.Join(m.delVeth(joinVethName(id, m.cfg.BridgeName)), m.release(id))
}

// Unplug takes id's first-network interface away while the container runs
// (`network disconnect` of its first network when it joined others): the
// DNAT rules, held ports, veth and leases go, the namespace stays, to be
// removed by the Detach of the network that takes over (all networks
// share one NetnsDir).
func (m *Manager) Unplug(id string) error {
	m.unreserve(id)
	var errs []error
	if err := m.unpublish(id); err != nil {
		errs = append(errs, err)
	}
	// the interface Attach made, or the one Join made when this network
	// took over as first network after an earlier Unplug
	for _, name := range []string{hostVethName(id), joinVethName(id, m.cfg.BridgeName)} {
		errs = append(errs, m.delVeth(name))
	}
	return errors.Join(append(errs, m.release(id))...)
}

// DefaultRoute routes ep's namespace by default through ep's interface and
// gateway (IPv4, and IPv6 on a dual-stack network): the network that takes
// over as first network after an Unplug.
func DefaultRoute(ep *Endpoint) error {
	return inNetns(ep.NetnsPath, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ep.Ifname)
		if err != nil {
			return fmt.Errorf("look up %s in netns %s: %w", ep.Ifname, ep.NetnsPath, err)
		}
		if err := h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: ep.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
		}
		if ep.IP6.IsValid() {
			if err := h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: ep.Gateway6.AsSlice()}); err != nil {
				return fmt.Errorf("IPv6 default route via %s: %w", ep.Gateway6, err)
			}
		}
		return nil
	})
}

// Republish publishes on this network, for ep (the interface Join made),
// the ports another network published for id until id left it (an Unplug
// of its first network): the same host ports, now forwarded to ep's
// addresses, so that a container keeps its published ports when its first
// network changes, as with dockerd. ep.Ports is set to the new mappings.
// An internal network publishes nothing.
func (m *Manager) Republish(id string, ep *Endpoint, old []Mapping) error {
	if m.cfg.Internal || len(old) == 0 {
		return nil
	}
	bindings := network.PortMap{}
	for _, o := range old {
		if o.HostIP == netip.IPv6Unspecified() {
			continue // the IPv6 twin of a port on every address: reserve adds it again
		}
		if o.HostIP.Is6() && m.ipam6 == nil {
			continue // an IPv4-only network cannot take it
		}
		p, err := network.ParsePort(fmt.Sprintf("%d/%s", o.ContainerPort, o.Proto))
		if err != nil {
			return err
		}
		bindings[p] = append(bindings[p], network.PortBinding{HostIP: o.HostIP, HostPort: strconv.Itoa(int(o.HostPort))})
	}
	ms, res, err := reserve(bindings, m.ipam6 != nil)
	if err != nil {
		return err
	}
	if err := m.publishReserved(id, ep.IP, ep.IP6, ms, res); err != nil {
		res.Close()
		return err
	}
	ep.Ports = ms
	return nil
}
