package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"

	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

// subnetPlan is a user network's address plan: one IPv4 subnet, and one
// IPv6 subnet on a --ipv6 network.
type subnetPlan struct {
	v4 network.IPAMConfig
	v6 *network.IPAMConfig
}

// subnetSource answers the questions planSubnets asks of the daemon.
type subnetSource struct {
	// taken names the network (or "the default bridge") a subnet overlaps.
	taken func(netip.Prefix) (string, bool)
	// pick4 chooses a free IPv4 subnet for a network created without one.
	pick4 func() (netip.Prefix, error)
	// seed makes the default IPv6 subnet of a network (its ID).
	seed string
}

// planSubnets validates the IPAM configuration of a create request and
// fills in what it leaves out. Errors are InvalidParameter for a malformed
// or unusable subnet, gateway or range, and Conflict for a subnet that
// overlaps another network's.
func planSubnets(req network.CreateRequest, src subnetSource) (subnetPlan, error) {
	var plan subnetPlan
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6
	var have4 bool
	var cfgs []network.IPAMConfig
	if req.IPAM != nil {
		cfgs = req.IPAM.Config
	}
	for _, cfg := range cfgs {
		if !cfg.Subnet.IsValid() {
			if cfg.Gateway.IsValid() || cfg.IPRange.IsValid() || len(cfg.AuxAddress) > 0 {
				return plan, errdefs.InvalidParameter(errors.New("every ip-range or gateway must have a corresponding subnet"))
			}
			continue
		}
		if m := cfg.Subnet.Masked(); m != cfg.Subnet {
			return plan, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: it should be %s", cfg.Subnet, m))
		}
		p := cfg.Subnet
		switch {
		case p.Addr().Is4() && p.Bits() > 30:
			return plan, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: too small, a /30 or larger is needed", p))
		case p.Addr().Is6() && !ipv6:
			return plan, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: an IPv6 subnet needs an IPv6 network (--ipv6)", p))
		case p.Addr().Is6() && p.Bits() > 120:
			return plan, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: too small, a /120 or larger is needed", p))
		case p.Addr().Is4() && have4, p.Addr().Is6() && plan.v6 != nil:
			return plan, errdefs.InvalidParameter(fmt.Errorf("subnet %s: only one IPv4 and one IPv6 subnet per network are supported", p))
		}
		gw := p.Addr().Next()
		if cfg.Gateway.IsValid() {
			// the broadcast address is refused by the network's IPAM
			if !p.Contains(cfg.Gateway) || cfg.Gateway == p.Addr() {
				return plan, errdefs.InvalidParameter(fmt.Errorf("invalid gateway %s: not a host address of subnet %s", cfg.Gateway, p))
			}
			gw = cfg.Gateway
		}
		if r := cfg.IPRange; r.IsValid() {
			if m := r.Masked(); m != r {
				return plan, errdefs.InvalidParameter(fmt.Errorf("invalid ip-range %s: it should be %s", r, m))
			}
			if r.Addr().Is4() != p.Addr().Is4() || r.Bits() < p.Bits() || !p.Contains(r.Addr()) {
				return plan, errdefs.InvalidParameter(fmt.Errorf("invalid ip-range %s: it should be within subnet %s", r, p))
			}
		}
		for name, a := range cfg.AuxAddress {
			if !p.Contains(a) {
				return plan, errdefs.InvalidParameter(fmt.Errorf("invalid auxiliary address %s=%s: not in subnet %s", name, a, p))
			}
			if a == gw {
				return plan, errdefs.InvalidParameter(fmt.Errorf("invalid auxiliary address %s=%s: it is the gateway", name, a))
			}
		}
		if other, ok := src.taken(p); ok {
			return plan, errdefs.Conflict(fmt.Errorf("invalid pool request: subnet %s overlaps with %s", p, other))
		}
		c := network.IPAMConfig{Subnet: p, Gateway: gw, IPRange: cfg.IPRange, AuxAddress: cfg.AuxAddress}
		if p.Addr().Is4() {
			plan.v4, have4 = c, true
		} else {
			plan.v6 = &c
		}
	}
	if !have4 {
		p, err := src.pick4()
		if err != nil {
			return plan, err
		}
		plan.v4 = network.IPAMConfig{Subnet: p, Gateway: p.Addr().Next()}
	}
	if ipv6 && plan.v6 == nil {
		p := defaultSubnet6(src.seed)
		if other, ok := src.taken(p); ok {
			return plan, errdefs.Conflict(fmt.Errorf("default IPv6 subnet %s overlaps with %s: give one with --subnet", p, other))
		}
		plan.v6 = &network.IPAMConfig{Subnet: p, Gateway: p.Addr().Next()}
	}
	return plan, nil
}

// defaultSubnet6 is the IPv6 subnet of a --ipv6 network created without
// one: a /64 of a unique local address (RFC 4193, fd00::/8) whose 40-bit
// global ID and subnet ID come from the network's ID, so that networks
// (and daemons) do not collide.
func defaultSubnet6(seed string) netip.Prefix {
	sum := sha256.Sum256([]byte("berth-ipv6-" + seed))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:8], sum[:7])
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}
