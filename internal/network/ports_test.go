package network

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/network"
)

func TestReserveDetectsConflictAndPicksEphemeral(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	p80, _ := network.ParsePort("80/tcp")
	lo := netip.MustParseAddr("127.0.0.1")

	_, _, err = reserve(network.PortMap{p80: {{HostIP: lo, HostPort: taken}}}, false)
	if !errdefs.IsConflict(err) {
		t.Fatalf("reserve of taken port %s: err = %v, want a conflict", taken, err)
	}

	ms, res, err := reserve(network.PortMap{p80: {{HostIP: lo}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if len(ms) != 1 || ms[0].HostPort == 0 || ms[0].ContainerPort != 80 || ms[0].Proto != "tcp" {
		t.Fatalf("ephemeral mapping = %+v", ms)
	}
	// the reservation holds the port
	if c, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ms[0].HostPort)))); err == nil {
		c.Close()
		t.Fatalf("port %d was not held", ms[0].HostPort)
	}
}

func TestReserveRangeSkipsTakenPort(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p80, _ := network.ParsePort("80/tcp")
	rng := strconv.Itoa(port) + "-" + strconv.Itoa(port+5)
	ms, res, err := reserve(network.PortMap{p80: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: rng}}}, false)
	if err != nil {
		t.Skipf("no free port in %s: %v", rng, err)
	}
	defer res.Close()
	if int(ms[0].HostPort) == port || int(ms[0].HostPort) > port+5 {
		t.Fatalf("range %s gave port %d", rng, ms[0].HostPort)
	}
}

func TestBindingsPublishAll(t *testing.T) {
	p80, _ := network.ParsePort("80/tcp")
	p53, _ := network.ParsePort("53/udp")
	got := Bindings(network.PortMap{p80: {{HostPort: "8080"}}}, network.PortSet{p80: {}, p53: {}}, true)
	if len(got[p80]) != 1 || got[p80][0].HostPort != "8080" || len(got[p53]) != 1 || got[p53][0].HostPort != "" {
		t.Fatalf("Bindings = %v", got)
	}
	if got := Bindings(nil, network.PortSet{p53: {}}, false); len(got) != 0 {
		t.Fatalf("Bindings without -P = %v", got)
	}
}

// TestReserveIPv6: an IPv6 host address needs a dual-stack network; there,
// a port without a host address is held (and forwarded) on IPv6 too.
func TestReserveIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	p80, _ := network.ParsePort("80/tcp")
	v6lo := netip.MustParseAddr("::1")
	if _, _, err := reserve(network.PortMap{p80: {{HostIP: v6lo}}}, false); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("[::1] on an IPv4-only network: %v, want InvalidParameter", err)
	}
	if ms, res, err := reserve(network.PortMap{p80: {{HostIP: netip.IPv6Unspecified()}}}, false); err != nil || len(ms) != 0 {
		t.Fatalf("[::] on an IPv4-only network = %+v, %v; want nothing published", ms, err)
	} else {
		res.Close()
	}
	ms, res, err := reserve(network.PortMap{p80: {{HostIP: v6lo}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].HostIP != v6lo || ms[0].HostPort == 0 {
		t.Fatalf("[::1] mapping = %+v", ms)
	}
	if c, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(int(ms[0].HostPort)))); err == nil {
		c.Close()
		t.Fatalf("[::1]:%d was not held", ms[0].HostPort)
	}
	res.Close()

	ms, res, err = reserve(network.PortMap{p80: {{}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if len(ms) != 2 || ms[0].HostIP.IsValid() || ms[1].HostIP != netip.IPv6Unspecified() || ms[0].HostPort != ms[1].HostPort {
		t.Fatalf("mappings of a port on every address, dual-stack = %+v, want 0.0.0.0 and [::] on one port", ms)
	}
	for _, nw := range []string{"tcp4", "tcp6"} {
		if c, err := net.Listen(nw, ":"+strconv.Itoa(int(ms[0].HostPort))); err == nil {
			c.Close()
			t.Fatalf("%s port %d was not held", nw, ms[0].HostPort)
		}
	}
}
