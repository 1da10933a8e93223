package network

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestJoinVethName(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	a, b := joinVethName(id, "br-aaaaaaaaaaaa"), joinVethName(id, "br-bbbbbbbbbbbb")
	if a == b {
		t.Fatalf("two networks give the same veth name %s", a)
	}
	for _, n := range []string{a, b} {
		if len(n) > 15 || n[:10] != "vx01234567" {
			t.Fatalf("veth name %q: want vx + 8 ID characters + 4 hex digits, at most 15", n)
		}
	}
	if joinVethName(id, "br-aaaaaaaaaaaa") != a {
		t.Fatal("veth name is not stable")
	}
	if a[:2] == hostVethName(id)[:2] {
		t.Fatalf("joined veth %s clashes with the first network's %s", a, hostVethName(id))
	}
}

func TestJoinLeaveDualStack(t *testing.T) {
	requireRoot(t)
	m1 := testManager(t)
	dir := t.TempDir()
	br2 := fmt.Sprintf("bj%d", os.Getpid()%100000)
	m2, err := New(Config{
		BridgeName: br2, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.212.%d.0/24", os.Getpid()%250)),
		Subnet6:  netip.MustParsePrefix(fmt.Sprintf("fd42:beef:%x::/64", os.Getpid()%0xffff)),
		StateDir: filepath.Join(dir, "state"), NetnsDir: filepath.Join(dir, "netns"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Remove() })
	id := fmt.Sprintf("%064x", time.Now().UnixNano())
	ep, err := m1.Attach(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Detach(id)
	start := time.Now()
	ep2, err := m2.Join(id, ep.NetnsPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Join took %v", time.Since(start))
	if ep2.Ifname != "eth1" || !ep2.IP6.IsValid() || ep2.Gateway6 != m2.cfg.Subnet6.Addr().Next() {
		t.Fatalf("joined endpoint = %+v", ep2)
	}
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth1, err := h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(eth1, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	all := strings.Join(got, " ")
	if !strings.Contains(all, ep2.IP.String()+"/24") || !strings.Contains(all, ep2.IP6.String()+"/64") {
		t.Fatalf("eth1 addresses = %v, want %s and %s", got, ep2.IP, ep2.IP6)
	}
	// the first network keeps the only default route
	routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil && r.LinkIndex == eth1.Attrs().Index {
			t.Fatalf("a joined network got a default route: %+v", r)
		}
	}
	if _, err := netlink.LinkByName(ep2.HostVeth); err != nil {
		t.Fatalf("host veth %s: %v", ep2.HostVeth, err)
	}
	if err := m2.Leave(id); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(ep2.HostVeth); err == nil {
		t.Fatalf("host veth %s left after Leave", ep2.HostVeth)
	}
	if _, err := h.LinkByName("eth1"); err == nil {
		t.Fatal("eth1 left in the namespace after Leave")
	}
	if len(m2.ipam.Leases) != 0 || len(m2.ipam6.Leases) != 0 {
		t.Fatalf("leases left after Leave: %v %v", m2.ipam.Leases, m2.ipam6.Leases)
	}
	if err := m2.Leave(id); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
}
