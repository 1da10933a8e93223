package network

import (
	"net"
	"testing"
	"time"
)

// TestUDPProxy: datagrams to the proxy's socket reach the "container" (an
// echo server on [::1]) and its replies come back to the client that sent
// them, per client; Close ends the flows.
func TestUDPProxy(t *testing.T) {
	echo, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newUDPProxy(pc, echo.LocalAddr().(*net.UDPAddr))
	go p.serve()
	defer p.Close()

	ask := func(c net.Conn, msg string) string {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to %q: %v", msg, err)
		}
		return string(buf[:n])
	}
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("udp6", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	for i := range 3 {
		for j, c := range clients {
			msg := string(rune('a'+j)) + string(rune('0'+i))
			if got := ask(c, msg); got != "echo:"+msg {
				t.Fatalf("client %d got %q, want %q", j, got, "echo:"+msg)
			}
		}
	}
	p.mu.Lock()
	flows := len(p.flows)
	p.mu.Unlock()
	if flows != 2 {
		t.Fatalf("%d flows, want one per client (2)", flows)
	}
	p.Close()
	if _, err := clients[0].Write([]byte("late")); err == nil {
		buf := make([]byte, 100)
		clients[0].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := clients[0].Read(buf); err == nil {
			t.Fatalf("reply %q after Close", buf[:n])
		}
	}
}

// TestUDPProxyIdleFlowEnds: a flow without traffic for the idle time goes.
func TestUDPProxyIdleFlowEnds(t *testing.T) {
	sink, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer sink.Close()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newUDPProxy(pc, sink.LocalAddr().(*net.UDPAddr))
	p.idle = 200 * time.Millisecond
	go p.serve()
	defer p.Close()
	c, err := net.Dial("udp6", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	buf := make([]byte, 10)
	sink.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := sink.ReadFrom(buf); err != nil {
		t.Fatalf("datagram not forwarded: %v", err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		p.mu.Lock()
		n := len(p.flows)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle flow still open after 3 s (idle time %v)", p.idle)
		}
	}
}
