package network

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// udpIdle is how long a UDP flow through the proxy lives without traffic,
// docker-proxy's value: UDP has no close, so a flow ends by silence.
const udpIdle = 90 * time.Second

// udpProxy forwards the datagrams a held UDP socket on [::1] (or [::])
// receives to a container: one connected socket per client address, so
// that the container's replies are told apart and sent back to the client
// that asked, from the published address and port.
type udpProxy struct {
	pc   net.PacketConn
	to   *net.UDPAddr
	idle time.Duration

	mu     sync.Mutex
	flows  map[string]*net.UDPConn // client address -> socket to the container
	closed bool
}

func newUDPProxy(pc net.PacketConn, to *net.UDPAddr) *udpProxy {
	return &udpProxy{pc: pc, to: to, idle: udpIdle, flows: map[string]*net.UDPConn{}}
}

func (p *udpProxy) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out := p.flow(from)
		if out == nil {
			continue
		}
		out.SetReadDeadline(time.Now().Add(p.idle))
		out.Write(buf[:n]) // a lost datagram is UDP's normal
	}
}

// flow is the socket to the container for client from, dialled (with its
// reply pump) on its first datagram; nil when the proxy is closed or the
// dial fails.
func (p *udpProxy) flow(from net.Addr) *net.UDPConn {
	key := from.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if c := p.flows[key]; c != nil {
		return c
	}
	c, err := net.DialUDP("udp6", nil, p.to)
	if err != nil {
		return nil
	}
	p.flows[key] = c
	go p.replies(key, from, c)
	return c
}

// replies sends the container's datagrams on c back to client from until
// the flow has been idle for p.idle (the read deadline, pushed on by each
// datagram either way) or the proxy closes.
func (p *udpProxy) replies(key string, from net.Addr, c *net.UDPConn) {
	defer func() {
		p.mu.Lock()
		if p.flows[key] == c {
			delete(p.flows, key)
		}
		p.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 65535)
	for {
		c.SetReadDeadline(time.Now().Add(p.idle))
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED: an ICMP port unreachable (nothing listens in
			// the container yet); the flow stays for the next datagram
			continue
		}
		if _, err := p.pc.WriteTo(buf[:n], from); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Close stops forwarding and ends every flow.
func (p *udpProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for _, c := range p.flows {
		c.Close()
	}
	p.mu.Unlock()
	return p.pc.Close()
}
