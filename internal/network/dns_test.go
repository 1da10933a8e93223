package network

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"berth/internal/errdefs"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x1234, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolverAnswer(t *testing.T) {
	web := netip.MustParseAddr("10.210.3.7")
	web6 := netip.MustParseAddr("fd00:1::7")
	client := netip.MustParseAddr("10.210.3.9")
	r := &Resolver{Lookup: func(from netip.Addr, n string) []netip.Addr {
		if from != client {
			return nil // names answer only for the network's containers
		}
		if n == "web" || n == "web-alias" {
			return []netip.Addr{web, web6}
		}
		return nil
	}}
	cases := []struct {
		name    string
		typ     dnsmessage.Type
		rcode   dnsmessage.RCode
		answers int
	}{
		{"web.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"WEB-Alias.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"web.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 1},
		{"web.", dnsmessage.TypeMX, dnsmessage.RCodeSuccess, 0},
		{"nosuch.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
		// no upstream configured: never leaves the host
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
	}
	for _, c := range cases {
		resp := r.answer(query(t, c.name, c.typ), "udp", client)
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("%s: unpack reply: %v", c.name, err)
		}
		if m.ID != 0x1234 || !m.Response || m.RCode != c.rcode || len(m.Answers) != c.answers {
			t.Fatalf("%s %v: reply id=%x response=%v rcode=%v answers=%d; want rcode %v, %d answers",
				c.name, c.typ, m.ID, m.Response, m.RCode, len(m.Answers), c.rcode, c.answers)
		}
		if c.answers == 1 && c.typ == dnsmessage.TypeA {
			a, ok := m.Answers[0].Body.(*dnsmessage.AResource)
			if !ok || netip.AddrFrom4(a.A) != web {
				t.Fatalf("%s: answer %v, want A %s", c.name, m.Answers[0].Body, web)
			}
		}
		if c.answers == 1 && c.typ == dnsmessage.TypeAAAA {
			a, ok := m.Answers[0].Body.(*dnsmessage.AAAAResource)
			if !ok || netip.AddrFrom16(a.AAAA) != web6 {
				t.Fatalf("%s: answer %v, want AAAA %s", c.name, m.Answers[0].Body, web6)
			}
		}
	}
	if r.answer([]byte{1, 2, 3}, "udp", client) != nil {
		t.Fatal("garbage query got a reply")
	}
}

func TestReserveIP(t *testing.T) {
	m, err := New(Config{BridgeName: "brtest0", Subnet: netip.MustParsePrefix("10.210.9.0/24"), StateDir: t.TempDir(), NetnsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.210.9.0", "10.210.9.1", "10.210.9.255", "10.210.10.5"} {
		if err := m.ReserveIP("a", netip.MustParseAddr(bad)); err == nil {
			t.Fatalf("ReserveIP(%s) succeeded", bad)
		}
	}
	ip := netip.MustParseAddr("10.210.9.50")
	if err := m.ReserveIP("a", ip); err != nil {
		t.Fatal(err)
	}
	if err := m.ReserveIP("b", ip); err == nil {
		t.Fatal("second lease of the same address succeeded")
	}
	if got, err := m.ipam.Allocate("a"); err != nil || got != ip {
		t.Fatalf("Allocate after ReserveIP = %s, %v; want %s", got, err, ip)
	}
	if got, err := m.ipam.Allocate("b"); err != nil || got == ip {
		t.Fatalf("Allocate(b) = %s, %v; want another address", got, err)
	}
}

func TestReserveIP6(t *testing.T) {
	cfg := Config{BridgeName: "brtest0", Subnet: netip.MustParsePrefix("10.210.9.0/24"), StateDir: t.TempDir(), NetnsDir: t.TempDir()}
	v4only, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := v4only.ReserveIP("a", netip.MustParseAddr("fd00:9::5")); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("an IPv6 address on an IPv4-only network: %v, want InvalidParameter", err)
	}
	cfg.StateDir, cfg.Subnet6 = t.TempDir(), netip.MustParsePrefix("fd00:9::/64")
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"fd00:9::", "fd00:9::1", "fd00:a::5"} {
		if err := m.ReserveIP("a", netip.MustParseAddr(bad)); err == nil {
			t.Fatalf("ReserveIP(%s) succeeded", bad)
		}
	}
	ip6 := netip.MustParseAddr("fd00:9::50")
	if err := m.ReserveIP("a", ip6); err != nil {
		t.Fatal(err)
	}
	if err := m.ReserveIP("b", ip6); !errdefs.IsConflict(err) {
		t.Fatalf("second lease of %s: %v, want Conflict", ip6, err)
	}
	if got, err := m.ipam6.Allocate("a"); err != nil || got != ip6 {
		t.Fatalf("IPv6 Allocate after ReserveIP = %s, %v; want %s", got, err, ip6)
	}
	if got, err := m.ipam.Allocate("a"); err != nil || !got.Is4() {
		t.Fatalf("IPv4 Allocate of a = %s, %v; want an address of the IPv4 pool", got, err)
	}
}

// TestResolverForwards: a name that is no container is relayed to the
// upstream server (a fake one on loopback) and its answer comes back as is,
// over UDP and TCP; a dead upstream is SERVFAIL.
func TestResolverForwards(t *testing.T) {
	upstreamIP := netip.MustParseAddr("10.77.0.5")
	answer := func(q []byte) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(q); err != nil || len(m.Questions) != 1 {
			return nil
		}
		m.Response = true
		m.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			Body:   &dnsmessage.AResource{A: upstreamIP.As4()},
		}}
		b, _ := m.Pack()
		return b
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n]), from)
		}
	}()
	tl, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Skipf("TCP port %s taken: %v", addr, err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err == nil {
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err == nil {
					a := answer(q)
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
				}
			}
			c.Close()
		}
	}()
	r := &Resolver{Upstream: []string{addr}, Log: slog.New(slog.DiscardHandler)}
	for _, proto := range []string{"udp", "tcp"} {
		var m dnsmessage.Message
		if err := m.Unpack(r.answer(query(t, "example.test.", dnsmessage.TypeA), proto, netip.MustParseAddr("10.210.3.9"))); err != nil {
			t.Fatalf("%s: unpack: %v", proto, err)
		}
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 {
			t.Fatalf("%s: forwarded reply rcode %v, %d answers", proto, m.RCode, len(m.Answers))
		}
		if a, ok := m.Answers[0].Body.(*dnsmessage.AResource); !ok || netip.AddrFrom4(a.A) != upstreamIP {
			t.Fatalf("%s: forwarded answer %v, want A %s", proto, m.Answers[0].Body, upstreamIP)
		}
	}
	tl.Close()
	dead := &Resolver{Upstream: []string{tl.Addr().String()}, Log: slog.New(slog.DiscardHandler)}
	var m dnsmessage.Message
	if err := m.Unpack(dead.answer(query(t, "example.test.", dnsmessage.TypeA), "tcp", netip.MustParseAddr("10.210.3.9"))); err != nil || m.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("dead upstream: rcode %v (%v), want SERVFAIL", m.RCode, err)
	}
}
