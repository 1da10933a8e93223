package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/network"
)

// Mapping is one published port: traffic to HostIP:HostPort (any local
// address when HostIP is unspecified) is forwarded to ContainerPort.
type Mapping struct {
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // the zero Addr or 0.0.0.0: every local address
	HostPort      uint16
	ContainerPort uint16
}

// Bindings returns the port bindings a container publishes: its
// HostConfig.PortBindings, plus, with publishAll (-P), every exposed port
// that has no binding, on an ephemeral host port.
func Bindings(bindings network.PortMap, exposed network.PortSet, publishAll bool) network.PortMap {
	out := network.PortMap{}
	for p, bs := range bindings {
		out[p] = append([]network.PortBinding(nil), bs...)
	}
	if publishAll {
		for p := range exposed {
			if len(out[p]) == 0 {
				out[p] = []network.PortBinding{{}}
			}
		}
	}
	return out
}

// reservation holds the host sockets of a container's published ports, the
// way docker-proxy does: no other program can bind them meanwhile, and a
// port already taken is detected before the container starts.
type reservation []io.Closer

func (r reservation) Close() {
	for _, c := range r {
		c.Close()
	}
}

// reserve binds every host port of bindings and returns the resolved
// mappings (ephemeral and ranged host ports chosen). A port that is taken is
// an errdefs.Conflict naming it. An IPv6 host address needs a dual-stack
// network (dual), which also publishes a port bound on every address
// (no host IP) on every IPv6 address, as dockerd does; a specific IPv6 host
// address on an IPv4-only network is InvalidParameter, [::] is skipped.
func reserve(bindings network.PortMap, dual bool) ([]Mapping, reservation, error) {
	var ms []Mapping
	var res reservation
	ports := make([]network.Port, 0, len(bindings))
	for p := range bindings {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].String() < ports[j].String() })
	for _, p := range ports {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" {
			res.Close()
			return nil, nil, errdefs.NotImplemented(fmt.Errorf("publish port %s: protocol %s is not supported", p, proto))
		}
		for _, b := range bindings[p] {
			lo, hi, err := hostPortRange(b.HostPort)
			if err != nil {
				res.Close()
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("publish port %s: %w", p, err))
			}
			m := Mapping{Proto: proto, HostIP: b.HostIP, ContainerPort: p.Num()}
			if m.HostIP.Is4In6() {
				m.HostIP = m.HostIP.Unmap()
			}
			if m.HostIP.Is6() && !dual && m.HostIP.IsUnspecified() {
				continue // "every IPv6 address" of a network without IPv6: nothing to publish
			}
			if m.HostIP.Is6() && !dual {
				res.Close()
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("publish port %s on %s: the network has no IPv6 (create it with --ipv6)", p, m.HostIP))
			}
			var c io.Closer
			var last error
			for port := lo; ; port++ {
				c, m.HostPort, last = bind(proto, m.HostIP, port)
				if last == nil || port >= hi {
					break
				}
			}
			if last != nil {
				res.Close()
				return nil, nil, last
			}
			res = append(res, c)
			ms = append(ms, m)
			if dual && (!m.HostIP.IsValid() || m.HostIP == netip.IPv4Unspecified()) {
				m6 := m
				m6.HostIP = netip.IPv6Unspecified()
				c6, _, err := bind(proto, m6.HostIP, m.HostPort)
				if err != nil {
					res.Close()
					return nil, nil, err
				}
				res = append(res, c6)
				ms = append(ms, m6)
			}
		}
	}
	return ms, res, nil
}

func hostPortRange(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid host port %q", s)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("invalid host port range %q", s)
		}
	}
	return uint16(l), uint16(h), nil
}

// bind reserves proto hostIP:port (port 0: an ephemeral one) and reports the
// port it got.
func bind(proto string, hostIP netip.Addr, port uint16) (io.Closer, uint16, error) {
	ip, family := "0.0.0.0", "4"
	if hostIP.IsValid() {
		ip = hostIP.String()
	}
	if hostIP.Is6() {
		family = "6" // an IPv6-only socket: [::] leaves 0.0.0.0 alone
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(int(port)))
	var c io.Closer
	var got int
	if proto == "udp" {
		pc, err := net.ListenPacket("udp"+family, addr)
		if err != nil {
			return nil, 0, bindError(addr, proto, err)
		}
		c, got = pc, pc.LocalAddr().(*net.UDPAddr).Port
	} else {
		l, err := net.Listen("tcp"+family, addr)
		if err != nil {
			return nil, 0, bindError(addr, proto, err)
		}
		c, got = l, l.Addr().(*net.TCPAddr).Port
	}
	return c, uint16(got), nil
}

func bindError(addr, proto string, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && strings.Contains(err.Error(), "address already in use") {
		return errdefs.Conflict(fmt.Errorf("failed to bind port %s/%s: address already in use", addr, proto))
	}
	return fmt.Errorf("failed to bind port %s/%s: %w", addr, proto, err)
}

// PortMap renders mappings the way inspect's NetworkSettings.Ports shows
// them; every exposed port without a mapping appears with a nil binding list.
func PortMap(ms []Mapping, exposed network.PortSet) network.PortMap {
	out := network.PortMap{}
	for p := range exposed {
		out[p] = nil
	}
	for _, m := range ms {
		p, err := network.ParsePort(fmt.Sprintf("%d/%s", m.ContainerPort, m.Proto))
		if err != nil {
			continue
		}
		ip := m.HostIP
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		out[p] = append(out[p], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(m.HostPort))})
	}
	return out
}
