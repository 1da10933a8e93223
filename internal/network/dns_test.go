package network

import (
	"net/netip"
	"testing"

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
