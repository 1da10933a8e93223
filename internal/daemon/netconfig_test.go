package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

func TestPlanSubnets(t *testing.T) {
	used := netip.MustParsePrefix("10.210.0.0/24")
	src := subnetSource{
		taken: func(p netip.Prefix) (string, bool) {
			if p.Overlaps(used) {
				return "network a's 10.210.0.0/24", true
			}
			return "", false
		},
		pick4: func() (netip.Prefix, error) { return netip.MustParsePrefix("10.210.1.0/24"), nil },
		seed:  "net-id",
	}
	req := func(ipv6 bool, subnets ...string) network.CreateRequest {
		r := network.CreateRequest{EnableIPv6: &ipv6, IPAM: &network.IPAM{}}
		for _, s := range subnets {
			r.IPAM.Config = append(r.IPAM.Config, network.IPAMConfig{Subnet: netip.MustParsePrefix(s)})
		}
		return r
	}
	bad := []struct {
		req  network.CreateRequest
		want string
		conf bool
	}{
		{req(false, "10.211.0.5/24"), "it should be 10.211.0.0/24", false},
		{req(false, "10.211.0.0/31"), "too small", false},
		{req(false, "fd00:1::/64"), "needs an IPv6 network", false},
		{req(true, "10.211.0.0/24", "10.212.0.0/24"), "only one IPv4", false},
		{req(false, "10.210.0.128/25"), "overlaps with network a", true},
		{req(false, "10.0.0.0/8"), "overlaps with network a", true},
	}
	for _, c := range bad {
		_, err := planSubnets(c.req, src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.req.IPAM.Config, err, c.want)
			continue
		}
		if c.conf != errdefs.IsConflict(err) || !c.conf && !errdefs.IsInvalidParameter(err) {
			t.Errorf("%v: error class of %v: want conflict=%v", c.req.IPAM.Config, err, c.conf)
		}
	}
	gw := req(false, "10.211.0.0/24")
	gw.IPAM.Config[0].Gateway = netip.MustParseAddr("10.212.0.1")
	if _, err := planSubnets(gw, src); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "not a host address of subnet") {
		t.Errorf("gateway outside the subnet: %v", err)
	}
	gw.IPAM.Config[0].Gateway = netip.MustParseAddr("10.211.0.0")
	if _, err := planSubnets(gw, src); !errdefs.IsInvalidParameter(err) {
		t.Errorf("network address as gateway: %v", err)
	}

	// docker's semantics: any host address as gateway, an ip-range inside
	// the subnet, auxiliary addresses inside it and other than the gateway
	other := req(false, "10.211.0.0/24")
	other.IPAM.Config[0].Gateway = netip.MustParseAddr("10.211.0.254")
	other.IPAM.Config[0].IPRange = netip.MustParsePrefix("10.211.0.128/25")
	other.IPAM.Config[0].AuxAddress = map[string]netip.Addr{"router": netip.MustParseAddr("10.211.0.130")}
	p, err := planSubnets(other, src)
	if err != nil || p.v4.Gateway.String() != "10.211.0.254" || p.v4.IPRange.String() != "10.211.0.128/25" || p.v4.AuxAddress["router"].String() != "10.211.0.130" {
		t.Errorf("gateway, range and aux address: %+v, %v", p, err)
	}
	for _, c := range []struct{ rng, want string }{
		{"10.211.0.130/25", "it should be 10.211.0.128/25"},
		{"10.211.1.0/25", "within subnet"},
		{"10.0.0.0/8", "within subnet"},
	} {
		rng := req(false, "10.211.0.0/24")
		rng.IPAM.Config[0].IPRange = netip.MustParsePrefix(c.rng)
		if _, err := planSubnets(rng, src); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ip-range %s: %v, want %q", c.rng, err, c.want)
		}
	}
	for _, a := range []string{"10.212.0.3", "10.211.0.1"} {
		aux := req(false, "10.211.0.0/24")
		aux.IPAM.Config[0].AuxAddress = map[string]netip.Addr{"x": netip.MustParseAddr(a)}
		if _, err := planSubnets(aux, src); !errdefs.IsInvalidParameter(err) {
			t.Errorf("aux address %s: %v", a, err)
		}
	}

	p, err = planSubnets(req(false), src)
	if err != nil || p.v4.Subnet.String() != "10.210.1.0/24" || p.v4.Gateway.String() != "10.210.1.1" || p.v6 != nil {
		t.Fatalf("default plan = %+v, %v", p, err)
	}
	p, err = planSubnets(req(true), src)
	if err != nil || p.v6 == nil || p.v6.Subnet.Bits() != 64 || p.v6.Subnet.Addr().As16()[0] != 0xfd || p.v6.Gateway != p.v6.Subnet.Addr().Next() {
		t.Fatalf("default dual-stack plan = %+v, %v", p, err)
	}
	if defaultSubnet6("a") == defaultSubnet6("b") || defaultSubnet6("a") != defaultSubnet6("a") {
		t.Fatal("default IPv6 subnets: want stable per network and different between networks")
	}
	p, err = planSubnets(req(true, "fd00:1:2:3::/64", "10.211.0.0/24"), src)
	if err != nil || p.v4.Subnet.String() != "10.211.0.0/24" || p.v6.Subnet.String() != "fd00:1:2:3::/64" || p.v6.Gateway.String() != "fd00:1:2:3::1" {
		t.Fatalf("explicit dual-stack plan = %+v, %v", p, err)
	}
}
