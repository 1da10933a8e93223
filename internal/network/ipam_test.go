package network

import (
	"net/netip"
	"path/filepath"
	"testing"
)

func TestIPAMAllocatePersistsAndSkipsReserved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	subnet := netip.MustParsePrefix("10.209.0.0/30") // hosts .1 (gateway) and .2
	a, err := loadIPAM(path, subnet)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := a.Allocate("c1")
	if err != nil || ip != netip.MustParseAddr("10.209.0.2") {
		t.Fatalf("Allocate(c1) = %v, %v; want 10.209.0.2", ip, err)
	}
	if _, err := a.Allocate("c2"); err == nil {
		t.Fatal("Allocate(c2) on a full /30 succeeded")
	}
	b, err := loadIPAM(path, subnet)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Leases["c1"]; got != ip {
		t.Fatalf("reloaded lease of c1 = %v, want %v", got, ip)
	}
	if err := b.Release("c1"); err != nil {
		t.Fatal(err)
	}
	if ip2, err := b.Allocate("c2"); err != nil || ip2 != ip {
		t.Fatalf("Allocate(c2) after release = %v, %v", ip2, err)
	}
}

func TestIPAMDoesNotReuseAtOnce(t *testing.T) {
	a, err := loadIPAM(filepath.Join(t.TempDir(), "ipam.json"), netip.MustParsePrefix("10.209.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	ip1, _ := a.Allocate("a")
	a.Release("a")
	ip2, _ := a.Allocate("b")
	if ip1 == ip2 {
		t.Fatalf("freed address %v reused at once", ip1)
	}
}

// TestIPAMRangeGatewayAux: dynamic addresses come from the ip-range only,
// never the gateway or an auxiliary address; a static one may be anywhere
// else in the subnet.
func TestIPAMRangeGatewayAux(t *testing.T) {
	a, err := loadIPAM(filepath.Join(t.TempDir(), "ipam.json"), netip.MustParsePrefix("10.209.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	gw, aux := netip.MustParseAddr("10.209.0.250"), netip.MustParseAddr("10.209.0.249")
	if err := a.restrict(gw, netip.MustParsePrefix("10.209.0.248/30"), []netip.Addr{aux, netip.MustParseAddr("fd00::1")}); err != nil {
		t.Fatal(err)
	}
	// the /30 holds .248 (the subnet's host, allowed), .249 (aux), .250
	// (gateway), .251: two addresses
	got := map[netip.Addr]bool{}
	for _, id := range []string{"a", "b"} {
		ip, err := a.Allocate(id)
		if err != nil {
			t.Fatal(err)
		}
		got[ip] = true
	}
	if !got[netip.MustParseAddr("10.209.0.248")] || !got[netip.MustParseAddr("10.209.0.251")] {
		t.Fatalf("allocated %v, want .248 and .251", got)
	}
	if ip, err := a.Allocate("c"); err == nil {
		t.Fatalf("Allocate beyond the range = %v, want an error", ip)
	}
	if !a.free(netip.MustParseAddr("10.209.0.7")) || a.free(gw) || a.free(aux) || a.free(netip.MustParseAddr("10.209.0.255")) {
		t.Fatal("free: want any other host address of the subnet, not the gateway, aux or broadcast")
	}
	for _, bad := range []struct {
		gw  string
		rng string
	}{{"10.210.0.1", ""}, {"10.209.0.0", ""}, {"10.209.0.255", ""}, {"", "10.210.0.0/25"}, {"", "10.208.0.0/16"}} {
		var g netip.Addr
		var r netip.Prefix
		if bad.gw != "" {
			g = netip.MustParseAddr(bad.gw)
		}
		if bad.rng != "" {
			r = netip.MustParsePrefix(bad.rng)
		}
		if err := a.restrict(g, r, nil); err == nil {
			t.Errorf("restrict(%s, %s) accepted", bad.gw, bad.rng)
		}
	}
}
