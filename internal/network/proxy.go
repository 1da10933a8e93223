package network

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// IPv6 has no route_localnet: the kernel never routes a packet from or to
// ::1 off the loopback device, so no DNAT can take the host's [::1] to a
// container (dockerd needs docker-proxy for it as well). A TCP port
// published on [::1] or on every IPv6 address ([::]) is therefore served
// on the host's loopback by a small proxy that accepts on the socket the
// reservation already holds and copies each connection to the container's
// IPv6 address. Every other address, and every IPv4 one, is DNAT in the
// kernel (nft.go). UDP ports on [::1] are proxied likewise, datagram by
// datagram (udpproxy.go).

// proxied reports whether m's traffic to [::1] goes through a proxy.
func proxied(m Mapping) bool {
	return m.HostIP.Is6() && (m.HostIP.IsLoopback() || m.HostIP.IsUnspecified())
}

// tcpProxy forwards the connections of a held listener to a container.
type tcpProxy struct {
	l  net.Listener
	to string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// startProxies turns the listeners of res that hold proxied mappings of ms
// (res[i] holds ms[i]) into proxies to ip6; closing res stops them.
func startProxies(ms []Mapping, res reservation, ip6 netip.Addr) {
	if !ip6.IsValid() {
		return
	}
	for i, m := range ms {
		if !proxied(m) {
			continue
		}
		switch held := res[i].(type) {
		case net.Listener:
			p := &tcpProxy{l: held, to: net.JoinHostPort(ip6.String(), strconv.Itoa(int(m.ContainerPort))), conns: map[net.Conn]struct{}{}}
			res[i] = p
			go p.serve()
		case net.PacketConn:
			p := newUDPProxy(held, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip6, m.ContainerPort)))
			res[i] = p
			go p.serve()
		}
	}
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go p.forward(c)
	}
}

// track registers c (false: the proxy is closed, c is closed here).
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *tcpProxy) forward(in net.Conn) {
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	out, err := net.Dial("tcp6", p.to)
	if err != nil {
		return
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite() // pass the half-close on
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// Close stops accepting and ends every forwarded connection.
func (p *tcpProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	return p.l.Close()
}
