package network

import (
	"fmt"
	"net/netip"

	"berth/internal/errdefs"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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
	if !a.subnet.Contains(ip) || ip == a.subnet.Masked().Addr() || ip == gatewayOf(a.subnet) || isBroadcast(a.subnet, ip) {
		return errdefs.InvalidParameter(fmt.Errorf("address %s is not a usable host address of %s", ip, a.subnet))
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
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ep.NetnsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", ep.NetnsPath, err)
	}
	defer h.Close()
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
}
