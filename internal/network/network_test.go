package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a bridge, veths, a netns and nftables rules")
	}
}

// testManager returns a Manager on a bridge and subnet of its own, removed
// at the end of the test.
func testManager(t *testing.T) *Manager {
	t.Helper()
	dir := t.TempDir()
	name := fmt.Sprintf("bu%d", os.Getpid()%100000)
	m, err := New(Config{
		BridgeName: name, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.209.%d.0/24", 64+os.Getpid()%60)),
		StateDir: filepath.Join(dir, "state"), NetnsDir: filepath.Join(dir, "netns"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("bridge %s left after Remove", name)
		}
	})
	return m
}

func TestAttachDetach(t *testing.T) {
	requireRoot(t)
	m := testManager(t)
	id := fmt.Sprintf("%064x", time.Now().UnixNano())
	p80, _ := network.ParsePort("80/tcp")
	ep, err := m.Attach(id, network.PortMap{p80: {{HostIP: netip.MustParseAddr("127.0.0.1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP != m.Gateway().Next() || ep.Gateway != m.Gateway() || len(ep.Ports) != 1 || ep.Ports[0].HostPort == 0 {
		t.Fatalf("endpoint = %+v", ep)
	}
	if _, err := net.InterfaceByName(ep.HostVeth); err != nil {
		t.Fatalf("host veth: %v", err)
	}
	// eth0 inside the netns carries the address
	ns, err := netns.GetFromPath(ep.NetnsPath)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := h.AddrList(eth0, netlink.FAMILY_V4)
	h.Close()
	if len(addrs) != 1 || !addrs[0].IP.Equal(ep.IP.AsSlice()) || eth0.Attrs().MTU != MTU {
		t.Fatalf("eth0 in the netns: addrs %v, MTU %d", addrs, eth0.Attrs().MTU)
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command(nft, "list", "table", "inet", m.Table()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("dnat ip to %s:80", ep.IP)) {
			t.Fatalf("nft table after Attach (%v):\n%s", err, out)
		}
	}
	if err := m.Detach(id); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ep.HostVeth)
	if _, err := os.Stat(ep.NetnsPath); !os.IsNotExist(err) {
		t.Fatalf("netns %s left after Detach: %v", ep.NetnsPath, err)
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		out, _ := exec.Command(nft, "list", "table", "inet", m.Table()).CombinedOutput()
		if strings.Contains(string(out), "dnat ip to") {
			t.Fatalf("DNAT rule left after Detach:\n%s", out)
		}
	}
}

// TestAttachOverhead measures what bridging adds to a container start.
func TestAttachOverhead(t *testing.T) {
	requireRoot(t)
	m := testManager(t)
	if _, err := m.Attach("warmup", nil); err != nil { // bridge and table
		t.Fatal(err)
	}
	m.Detach("warmup")
	const n = 40
	var attach, detach []time.Duration
	for i := range n {
		id := fmt.Sprintf("overhead%02d", i)
		s := time.Now()
		if _, err := m.Attach(id, nil); err != nil {
			t.Fatal(err)
		}
		attach = append(attach, time.Since(s))
		s = time.Now()
		if err := m.Detach(id); err != nil {
			t.Fatal(err)
		}
		detach = append(detach, time.Since(s))
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	t.Logf("Attach %v, Detach %v (medians of %d)", median(attach), median(detach), n)
}

// waitGone waits for the kernel to destroy a detached container's veth with
// its namespace (asynchronously, see Detach).
func waitGone(t *testing.T, veth string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := net.InterfaceByName(veth); err != nil {
			return
		}
	}
	t.Fatalf("veth %s left after Detach", veth)
}
