package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Resolver is a user-defined network's embedded DNS server. It listens on
// the network's gateway address, port 53, UDP and TCP, in the host's
// namespace (containers reach the gateway directly, so no DNAT is needed):
// A and AAAA queries for names Lookup knows (container names, short IDs,
// aliases on this network and on the other networks of the asking
// container) are answered from it; every other query is relayed as is to
// the upstream servers (the host's resolv.conf).
type Resolver struct {
	// Lookup returns the addresses (IPv4 and IPv6) of the container called
	// name as seen from the client address from; none: an unknown name.
	Lookup func(from netip.Addr, name string) []netip.Addr
	// Upstream servers as "ip:53"; empty makes unknown names NXDOMAIN.
	Upstream []string
	Log      *slog.Logger

	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

// Listen binds addr:53 on UDP and TCP and serves until Close.
func (r *Resolver) Listen(addr netip.Addr) error {
	ap := netip.AddrPortFrom(addr, 53).String()
	udp, err := net.ListenPacket("udp4", ap)
	if err != nil {
		return fmt.Errorf("dns: listen udp %s: %w", ap, err)
	}
	tcp, err := net.Listen("tcp4", ap)
	if err != nil {
		udp.Close()
		return fmt.Errorf("dns: listen tcp %s: %w", ap, err)
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	r.udp, r.tcp = udp, tcp
	r.wg.Add(2)
	go r.serveUDP()
	go r.serveTCP()
	return nil
}

// Close stops the server and waits for its loops.
func (r *Resolver) Close() {
	r.once.Do(func() {
		if r.udp != nil {
			r.udp.Close()
			r.tcp.Close()
		}
		r.wg.Wait()
	})
}

func (r *Resolver) serveUDP() {
	defer r.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := r.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := r.answer(q, "udp", addrOf(from)); resp != nil {
				r.udp.WriteTo(resp, from)
			}
		}()
	}
}

func (r *Resolver) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := r.answer(q, "tcp", addrOf(c.RemoteAddr()))
				if resp == nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := c.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
	}
}

// addrOf is the IP of a UDP or TCP peer (invalid for anything else).
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// answer builds the reply to one query message from client (nil: drop it).
func (r *Resolver) answer(q []byte, proto string, client netip.Addr) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return reply(h, qs, dnsmessage.RCodeFormatError, nil)
	}
	qq := qs[0]
	name := strings.ToLower(strings.TrimSuffix(qq.Name.String(), "."))
	if ips := r.lookup(client, name); len(ips) > 0 {
		var rrs []dnsmessage.Resource
		for _, ip := range ips {
			rh := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 600}
			switch {
			case ip.Is4() && (qq.Type == dnsmessage.TypeA || qq.Type == dnsmessage.TypeALL):
				rh.Type = dnsmessage.TypeA
				rrs = append(rrs, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: ip.As4()}})
			case ip.Is6() && (qq.Type == dnsmessage.TypeAAAA || qq.Type == dnsmessage.TypeALL):
				rh.Type = dnsmessage.TypeAAAA
				rrs = append(rrs, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
			}
		}
		// other types for a known name: NOERROR with no records
		return reply(h, qs, dnsmessage.RCodeSuccess, rrs)
	}
	if len(r.Upstream) == 0 || !strings.Contains(name, ".") {
		// a bare name is a container that is not (or no longer) here;
		// docker does not forward those either
		return reply(h, qs, dnsmessage.RCodeNameError, nil)
	}
	if resp, err := r.forward(q, proto); err == nil {
		return resp
	} else {
		r.Log.Debug("dns forward", "name", name, "err", err)
	}
	return reply(h, qs, dnsmessage.RCodeServerFailure, nil)
}

func (r *Resolver) lookup(client netip.Addr, name string) []netip.Addr {
	if r.Lookup == nil || name == "" {
		return nil
	}
	return r.Lookup(client, name)
}

func reply(h dnsmessage.Header, qs []dnsmessage.Question, rc dnsmessage.RCode, rrs []dnsmessage.Resource) []byte {
	h.Response, h.Authoritative, h.RecursionAvailable, h.RCode = true, true, true, rc
	msg := dnsmessage.Message{Header: h, Questions: qs, Answers: rrs}
	b, err := msg.Pack()
	if err != nil {
		return nil
	}
	return b
}

// forward relays q to the first upstream that answers.
func (r *Resolver) forward(q []byte, proto string) ([]byte, error) {
	var errs []error
	for _, up := range r.Upstream {
		c, err := net.DialTimeout(proto, up, 2*time.Second)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		resp, err := exchange(c, q, proto)
		c.Close()
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", up, err))
	}
	return nil, errors.Join(errs...)
}

func exchange(c net.Conn, q []byte, proto string) ([]byte, error) {
	if proto == "udp" {
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		return buf[:n], err
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(c, resp)
	return resp, err
}
