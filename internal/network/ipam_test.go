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
