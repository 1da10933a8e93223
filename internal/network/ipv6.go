package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dual-stack networks (Config.Subnet6): the bridge gets the subnet's first
// address, every interface on the network one more from the network's
// second IPAM (ipam6.json), without duplicate address detection (the
// addresses are unique by construction, and DAD would keep a new address
// tentative, unusable, for about a second after start).

// v6Addr is ip/bits as a netlink address with DAD off.
func v6Addr(ip netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, 128)}, Flags: unix.IFA_F_NODAD}
}

// allocate6 leases id's IPv6 address on a dual-stack network into ep.
func (m *Manager) allocate6(id string, ep *Endpoint) error {
	if m.ipam6 == nil {
		return nil
	}
	ip6, err := m.ipam6.Allocate(id)
	if err != nil {
		return err
	}
	ep.IP6, ep.PrefixLen6, ep.Gateway6 = ip6, m.cfg.Subnet6.Bits(), m.ipam6.gateway
	return nil
}

// address6 gives link (in ns, through h) ep's IPv6 address, and a default
// route via the network's gateway when defaultRoute is set. IPv6 is
// enabled on link first: a namespace may inherit disable_ipv6=1.
func address6(ns netns.NsHandle, h *netlink.Handle, link netlink.Link, ep *Endpoint, defaultRoute bool) error {
	name := link.Attrs().Name
	if err := sysctlIn(ns, filepath.Join("net/ipv6/conf", name, "disable_ipv6"), "0"); err != nil {
		return fmt.Errorf("enable IPv6 on %s in netns %s: %w", name, ep.NetnsPath, err)
	}
	if err := h.AddrAdd(link, v6Addr(ep.IP6, ep.PrefixLen6)); err != nil {
		return fmt.Errorf("address %s with %s/%d: %w", name, ep.IP6, ep.PrefixLen6, err)
	}
	if !defaultRoute {
		return nil
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: ep.Gateway6.AsSlice()}); err != nil {
		return fmt.Errorf("IPv6 default route via %s: %w", ep.Gateway6, err)
	}
	return nil
}

// sysctlIn sets a /proc/sys key (e.g. "net/ipv6/conf/eth0/disable_ipv6")
// inside ns. /proc/sys/net shows the namespace of the thread that opens
// it, so the write happens on a locked thread moved into ns and back; a
// thread that cannot return stays locked and ends with its goroutine.
func sysctlIn(ns netns.NsHandle, key, val string) error {
	if strings.Contains(key, "..") {
		return fmt.Errorf("sysctl key %q", key)
	}
	return onThreadIn(func() error { return netns.Set(ns) }, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(val), 0o644)
	})
}
