package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"berth/internal/errdefs"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ReserveIP leases ip to id ahead of Attach or Join (`run --ip`, `--ip6`),
// which then use it: an IPv4 address from the network's subnet, an IPv6 one
// from its IPv6 subnet. An address outside the subnet, the gateway, the
// network or broadcast address is InvalidParameter, and so is an IPv6
// address on a network without IPv6; one leased to another container is
// Conflict.
func (m *Manager) ReserveIP(id string, ip netip.Addr) error {
	a := m.ipam
	if ip.Is6() {
		if a = m.ipam6; a == nil {
			return errdefs.InvalidParameter(fmt.Errorf("address %s: the network has no IPv6 (create it with --ipv6)", ip))
		}
	}
	if !a.free(ip) {
		return errdefs.InvalidParameter(fmt.Errorf("address %s is not a usable host address of %s (network, broadcast, gateway or auxiliary address)", ip, a.subnet))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for other, leased := range a.Leases {
		if leased == ip && other != id {
			return errdefs.Conflict(fmt.Errorf("address %s is already in use by container %.12s", ip, other))
		}
	}
	if old, ok := a.Leases[id]; ok && old == ip {
		return nil
	}
	old, had := a.Leases[id]
	a.Leases[id] = ip
	if err := a.saveLocked(); err != nil {
		if had {
			a.Leases[id] = old
		} else {
			delete(a.Leases, id)
		}
		return err
	}
	return nil
}

// Isolate removes the default route from an attached endpoint's namespace:
// the container of an --internal network reaches its subnet (and the DNS
// server on the gateway) but nothing beyond, as with dockerd, whose
// internal networks have no gateway route either.
func Isolate(ep *Endpoint) error {
	return inNetns(ep.NetnsPath, func(h *netlink.Handle) error {
		routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list routes in netns %s: %w", ep.NetnsPath, err)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" || r.Dst.String() == "::/0" {
				if err := h.RouteDel(&r); err != nil {
					return fmt.Errorf("delete default route in netns %s: %w", ep.NetnsPath, err)
				}
			}
		}
		return nil
	})
}

// inNetns runs f with an rtnetlink handle in the namespace bind-mounted at
// path.
func inNetns(path string, f func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", path, err)
	}
	defer h.Close()
	return f(h)
}

// ReserveMAC makes the next Attach or Join of id give its interface mac
// (`run --mac-address`, EndpointSettings.MacAddress) instead of the one
// derived from its address. A multicast or malformed address is
// InvalidParameter.
func (m *Manager) ReserveMAC(id string, mac net.HardwareAddr) error {
	if len(mac) != 6 || mac[0]&1 != 0 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address %s: a unicast Ethernet address is needed", mac))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.macs == nil {
		m.macs = map[string]net.HardwareAddr{}
	}
	m.macs[id] = mac
	return nil
}

// macFor is id's MAC address: the reserved one, else 02:42 and ip's four
// bytes, as dockerd derives it.
func (m *Manager) macFor(id string, ip netip.Addr) net.HardwareAddr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mac, ok := m.macs[id]; ok {
		return mac
	}
	a4 := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a4[0], a4[1], a4[2], a4[3]}
}

// release frees what id holds of the network's addresses: its IPv4 and
// IPv6 leases and a reserved MAC.
func (m *Manager) release(id string) error {
	m.mu.Lock()
	delete(m.macs, id)
	m.mu.Unlock()
	var errs []error
	if err := m.ipam.Release(id); err != nil {
		errs = append(errs, err)
	}
	if m.ipam6 != nil {
		if err := m.ipam6.Release(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// delVeth deletes the host veth name when it exists; one gone meanwhile
// (with its namespace) is no error.
func (m *Manager) delVeth(name string) error {
	l, err := m.host().LinkByName(name)
	if err != nil {
		return nil
	}
	if err := m.host().LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", name, err)
	}
	return nil
}
