package network

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The daemon's nftables state is one table of its own (inet <table>):
//
//	chain prerouting  { type nat hook prerouting priority dstnat }  per-port DNAT
//	chain output      { type nat hook output priority dstnat }      the same DNAT, for the host's own traffic
//	chain postrouting { type nat hook postrouting priority srcnat }
//	    ip saddr <subnet> oifname != <bridge> masquerade             outbound
//	    ip saddr 127.0.0.0/8 oifname <bridge> masquerade             host loopback -> container (route_localnet)
//	    ip saddr <subnet> oifname <bridge> ct status dnat masquerade hairpin via a published port
//	    (and the first and last for ip6 <subnet6> on a dual-stack network)
//	chain forward     { type filter hook forward priority filter }  isolation, as dockerd's
//	    oifname <bridge> iifname != <bridge> ct state established,related accept  replies
//	    oifname <bridge> iifname != <bridge> ct status dnat accept                published ports
//	    oifname <bridge> iifname != <bridge> drop          no routing in from other networks
//	    iifname <bridge> oifname != <bridge> drop          internal networks only: nor out
//
// A container's DNAT rules carry its ID as user data, so they are found and
// deleted without any other bookkeeping, even by a restarted daemon.
type ruleset struct {
	table             *nftables.Table
	pre, output, post *nftables.Chain
	forward           *nftables.Chain
	bridge            string
	subnet            netip.Prefix
	// subnet6 is the IPv6 subnet of a dual-stack network (invalid: none)
	subnet6 netip.Prefix
	// internal: no outbound masquerade (an --internal network)
	internal bool
}

func newRuleset(table, bridge string, subnet, subnet6 netip.Prefix, internal bool) *ruleset {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	nat := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
	}
	return &ruleset{
		table:  t,
		pre:    nat("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest),
		output: nat("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest),
		post:   nat("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource),
		forward: &nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
		bridge:   bridge,
		subnet:   subnet.Masked(),
		subnet6:  subnet6,
		internal: internal,
	}
}

// install creates the table and its chains if missing and rewrites the base
// rules. The DNAT chains are kept: a restarted daemon's running containers
// keep their published ports.
func (r *ruleset) install() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.AddTable(r.table) // no-ops for what exists
	for _, ch := range []*nftables.Chain{r.pre, r.output, r.post, r.forward} {
		c.AddChain(ch)
	}
	c.FlushChain(r.post)
	c.FlushChain(r.forward)
	in := cat(ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpEq), ifname(expr.MetaKeyIIFNAME, r.bridge, expr.CmpOpNeq))
	c.AddRule(&nftables.Rule{Table: r.table, Chain: r.forward, Exprs: cat(in, ctEstablished(), verdict(expr.VerdictAccept))})
	c.AddRule(&nftables.Rule{Table: r.table, Chain: r.forward, Exprs: cat(in, ctDNAT(), verdict(expr.VerdictAccept))})
	c.AddRule(&nftables.Rule{Table: r.table, Chain: r.forward, Exprs: cat(in, verdict(expr.VerdictDrop))})
	if r.internal {
		out := cat(ifname(expr.MetaKeyIIFNAME, r.bridge, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpNeq))
		c.AddRule(&nftables.Rule{Table: r.table, Chain: r.forward, Exprs: cat(out, verdict(expr.VerdictDrop))})
	}
	src := ipSaddrIn(r.subnet)
	if !r.internal {
		c.AddRule(&nftables.Rule{Table: r.table, Chain: r.post, Exprs: cat(src, ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpNeq), masq())})
	}
	c.AddRule(&nftables.Rule{Table: r.table, Chain: r.post, Exprs: cat(ipSaddrIn(netip.MustParsePrefix("127.0.0.0/8")), ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpEq), masq())})
	c.AddRule(&nftables.Rule{Table: r.table, Chain: r.post, Exprs: cat(src, ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpEq), ctDNAT(), masq())})
	if r.subnet6.IsValid() {
		// (no rule for ::1: IPv6 has no route_localnet, see proxy.go)
		src6 := ip6SaddrIn(r.subnet6)
		if !r.internal {
			c.AddRule(&nftables.Rule{Table: r.table, Chain: r.post, Exprs: cat(src6, ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpNeq), masq())})
		}
		c.AddRule(&nftables.Rule{Table: r.table, Chain: r.post, Exprs: cat(src6, ifname(expr.MetaKeyOIFNAME, r.bridge, expr.CmpOpEq), ctDNAT(), masq())})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table inet %s: %w", r.table.Name, err)
	}
	return nil
}

// remove deletes the whole table.
func (r *ruleset) remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.DelTable(r.table)
	if err := c.Flush(); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete nftables table inet %s: %w", r.table.Name, err)
	}
	return nil
}

// publish adds the DNAT rules of id's mappings to ip, and of its IPv6
// mappings to ip6.
func (r *ruleset) publish(id string, ip, ip6 netip.Addr, ms []Mapping) error {
	if len(ms) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, m := range ms {
		to := ip
		if m.HostIP.Is6() {
			to = ip6
		}
		if m.HostIP.Is6() && m.HostIP.IsLoopback() {
			continue // the kernel cannot DNAT ::1: see proxy.go
		}
		for _, ch := range []*nftables.Chain{r.pre, r.output} {
			c.AddRule(&nftables.Rule{Table: r.table, Chain: ch, UserData: tag(id), Exprs: dnat(m, to)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add port rules of container %s: %w", id, err)
	}
	return nil
}

// unpublish deletes every rule tagged with id.
func (r *ruleset) unpublish(id string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	n := 0
	for _, ch := range []*nftables.Chain{r.pre, r.output} {
		rules, err := c.GetRules(r.table, ch)
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return fmt.Errorf("list nftables chain %s: %w", ch.Name, err)
		}
		for _, rule := range rules {
			if bytes.Equal(rule.UserData, tag(id)) {
				if err := c.DelRule(rule); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete port rules of container %s: %w", id, err)
	}
	return nil
}

func tag(id string) []byte { return []byte("berth:" + id) }

// tagged lists the containers that have DNAT rules in the table.
func (r *ruleset) tagged() (map[string]bool, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	out := map[string]bool{}
	for _, ch := range []*nftables.Chain{r.pre, r.output} {
		rules, err := c.GetRules(r.table, ch)
		if err != nil {
			return nil, fmt.Errorf("list nftables chain %s: %w", ch.Name, err)
		}
		for _, rule := range rules {
			if id, ok := bytes.CutPrefix(rule.UserData, []byte("berth:")); ok {
				out[string(id)] = true
			}
		}
	}
	return out, nil
}

func isNotExist(err error) bool {
	return err != nil && (bytes.Contains([]byte(err.Error()), []byte("no such file or directory")) ||
		bytes.Contains([]byte(err.Error()), []byte("not exist")))
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ipSaddrIn matches IPv4 packets from p.
func ipSaddrIn(p netip.Prefix) []expr.Any {
	m := prefixMask(p.Bits())
	net4 := p.Masked().Addr().As4()
	return append(ipv4(),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net4[:]},
	)
}

func ipv6() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// ip6SaddrIn matches IPv6 packets from p.
func ip6SaddrIn(p netip.Prefix) []expr.Any {
	m := net.CIDRMask(p.Bits(), 128)
	a := p.Masked().Addr().As16()
	return append(ipv6(),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: m, Xor: make([]byte, 16)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	)
}

func prefixMask(bits int) [4]byte {
	v := ^uint32(0) << (32 - bits)
	if bits == 0 {
		v = 0
	}
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func ifname(key expr.MetaKey, name string, op expr.CmpOp) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// ctEstablished matches packets of known connections (replies).
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// ctDNAT matches connections whose destination was rewritten.
func ctDNAT() []expr.Any {
	const ipsDstNAT = 1 << 5 // IPS_DST_NAT
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// dnat forwards m's host side to ip:m.ContainerPort (IPv6 when m.HostIP
// is). An unspecified host address matches every local address (fib daddr
// type local).
func dnat(m Mapping, ip netip.Addr) []expr.Any {
	proto := byte(unix.IPPROTO_TCP)
	if m.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	family, e, daddrAt := byte(unix.NFPROTO_IPV4), ipv4(), uint32(16)
	if m.HostIP.Is6() {
		family, e, daddrAt = unix.NFPROTO_IPV6, ipv6(), 24
	}
	if m.HostIP.IsValid() && !m.HostIP.IsUnspecified() {
		a := m.HostIP.AsSlice()
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrAt, Len: uint32(len(a))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a})
	} else {
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
		if m.HostIP.Is6() {
			// ::1 is left to the proxy (proxy.go)
			lo := netip.IPv6Loopback().As16()
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrAt, Len: 16},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo[:]})
		}
	}
	cip := ip.AsSlice()
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.HostPort)},
		&expr.Immediate{Register: 1, Data: cip},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(m.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(family), RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}
