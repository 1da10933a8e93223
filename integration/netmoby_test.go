package integration

import (
	"debug/elf"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestNetworkNamedBeforeItExists: as dockerd, `create --network a
// --network b` records a network that does not exist yet (moby's
// TestCreateWithMultipleEndpointSettings); the start looks it up, fails
// while it is missing and joins it once it exists.
func TestNetworkNamedBeforeItExists(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	a, later, c := nw+"-a", nw+"-later", nw+"-c"
	must(t, e.docker(t, "network", "create", a))
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", c)
		e.docker(t, "network", "rm", a, later)
	})
	must(t, e.docker(t, "create", "--name", c, "--network", a, "--network", later, "busybox", "sleep", "300"))
	if r := e.docker(t, "start", c); r.code == 0 || !strings.Contains(r.stderr, later) || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("start with a network that does not exist: %s", r)
	}
	must(t, e.docker(t, "network", "create", later))
	must(t, e.docker(t, "start", c))
	out := must(t, e.docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}", c)).stdout
	if !strings.Contains(out, a+"=10.") || !strings.Contains(out, later+"=10.") {
		t.Fatalf("networks after the start: %q", out)
	}
	if r := must(t, e.docker(t, "exec", c, "ip", "-o", "-4", "addr")); strings.Count(r.stdout, "inet 10.") != 2 {
		t.Fatalf("addresses in the container:\n%s", r.stdout)
	}
}

// TestNetworkMacAddress: --mac-address is the MAC of the container's
// interface on the default bridge and on a user network, and inspect shows
// it (moby's TestCreateWithCustomMACs).
func TestNetworkMacAddress(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			nw := uniq(t)
			must(t, e.cli(t, which, "network", "create", nw))
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", nw+"-u")
				e.docker(t, "network", "rm", nw)
			})
			mac := fmt.Sprintf("02:32:1c:23:0%d:04", i)
			r := must(t, e.cli(t, which, "run", "--rm", "--mac-address", mac, "busybox", "ip", "-o", "link", "show", "eth0"))
			if !strings.Contains(r.stdout, "link/ether "+mac) {
				t.Fatalf("eth0 on the default bridge:\n%s", r.stdout)
			}
			mac2 := fmt.Sprintf("02:32:1c:23:0%d:05", i)
			must(t, e.cli(t, which, "run", "-d", "--name", nw+"-u", "--network", nw, "--mac-address", mac2, "busybox", "sleep", "300"))
			if r := must(t, e.cli(t, which, "exec", nw+"-u", "ip", "-o", "link", "show", "eth0")); !strings.Contains(r.stdout, "link/ether "+mac2) {
				t.Fatalf("eth0 on a user network:\n%s", r.stdout)
			}
			if got := strings.TrimSpace(must(t, e.cli(t, which, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", nw+"-u")).stdout); got != mac2 {
				t.Fatalf("inspect MacAddress = %q, want %s", got, mac2)
			}
			if r := e.cli(t, which, "run", "--rm", "--mac-address", "03:00:00:00:00:01", "busybox", "true"); r.code == 0 {
				t.Fatalf("a multicast MAC address accepted: %s", r)
			}
		})
	}
}

// TestNetworkHostnameResolves (both CLIs): the embedded DNS answers a
// container's --hostname and inspect lists it in DNSNames, as dockerd
// (moby's TestHostnameDnsResolution).
func TestNetworkHostnameResolves(t *testing.T) {
	e := daemonEnv(t)
	for _, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			nw := uniq(t)
			srv, host := nw+"-s", "hn"+strings.ReplaceAll(nw[len(nw)-6:], "_", "")
			must(t, e.cli(t, which, "network", "create", nw))
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", srv)
				e.docker(t, "network", "rm", nw)
			})
			must(t, e.cli(t, which, "run", "-d", "--name", srv, "--network", nw, "--hostname", host, "busybox", "sleep", "300"))
			names := must(t, e.cli(t, which, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{json .DNSNames}}{{end}}", srv)).stdout
			if !strings.Contains(names, `"`+host+`"`) || !strings.HasPrefix(names, `["`+srv+`"`) {
				t.Fatalf("DNSNames = %s, want the name first and %s", names, host)
			}
			// its own /etc/hosts names it too: clear it, as moby's test does
			must(t, e.cli(t, which, "exec", srv, "sh", "-c", "echo 127.0.0.1 localhost > /etc/hosts && ping -c1 -W2 "+host))
			must(t, e.cli(t, which, "run", "--rm", "--network", nw, "busybox", "ping", "-c1", "-W2", host))
		})
	}
}

// TestVolumeMountUnknownDriver: a --mount volume with a driver berth does
// not have is refused at create with dockerd's error (moby's
// TestContainerVolumeAnonymous/custom_driver), and nothing is left.
func TestVolumeMountUnknownDriver(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	before := must(t, e.docker(t, "volume", "ls", "-q")).stdout
	// --pull never: the CLI takes a 404 from create for a missing image and
	// would try to pull it otherwise
	r := e.docker(t, "create", "--pull", "never", "--name", name, "--mount", "type=volume,dst=/foo,volume-driver=no-such-plugin", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, `plugin "no-such-plugin" not found`) {
		t.Fatalf("create with an unknown volume driver: %s", r)
	}
	if after := must(t, e.docker(t, "volume", "ls", "-q")).stdout; after != before {
		t.Fatalf("volumes changed by the failed create:\n%s\nvs\n%s", before, after)
	}
	must(t, e.docker(t, "create", "--name", name, "--mount", "type=volume,dst=/foo,volume-driver=local", "busybox", "true"))
}

// TestNetworkUDPOnIPv6Loopback: a UDP port published on [::1] of a
// dual-stack network reaches the container, through the in-daemon proxy
// (IPv6 has no route_localnet), and its replies come back.
func TestNetworkUDPOnIPv6Loopback(t *testing.T) {
	e := daemonEnv(t)
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	nw := uniq(t)
	srv := nw + "-u"
	must(t, e.docker(t, "network", "create", "--ipv6", nw))
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", srv)
		e.docker(t, "network", "rm", nw)
	})
	// busybox has no UDP server: the container runs this test binary as
	// one (TestUDPEchoHelper)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if f, err := elf.Open(self); err != nil {
		t.Skipf("test binary %s: %v", self, err)
	} else {
		dynamic := false
		for _, p := range f.Progs {
			dynamic = dynamic || p.Type == elf.PT_INTERP
		}
		f.Close()
		if dynamic {
			t.Skip("the test binary is dynamically linked (CGO_ENABLED=1): it cannot serve inside busybox")
		}
	}
	must(t, e.docker(t, "run", "-d", "--name", srv, "--network", nw, "-p", fmt.Sprintf("[::1]:%d:7/udp", port),
		"-v", self+":/udpecho:ro", "-e", "BERTH_UDP_ECHO=[::]:7", "busybox", "/udpecho", "-test.run=^TestUDPEchoHelper$"))
	c, err := net.Dial("udp6", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && got == ""; {
		c.Write([]byte("ping6-udp\n"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			got = string(buf[:n])
		}
	}
	if got != "ping6-udp\n" {
		logs := e.docker(t, "logs", srv)
		t.Fatalf("reply through [::1]:%d/udp = %q; server logs: %s", port, got, logs)
	}
	must(t, e.docker(t, "rm", "-f", srv))
	// the proxy's socket went with the container
	l, err := net.ListenPacket("udp6", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		t.Fatalf("[::1]:%d/udp still held after rm: %v", port, err)
	}
	l.Close()
}

// TestUDPEchoHelper is not a test: with BERTH_UDP_ECHO=ADDR set it is a UDP
// echo server on ADDR, run inside a container by
// TestNetworkUDPOnIPv6Loopback.
func TestUDPEchoHelper(t *testing.T) {
	addr := os.Getenv("BERTH_UDP_ECHO")
	if addr == "" {
		t.Skip("helper process of TestNetworkUDPOnIPv6Loopback (BERTH_UDP_ECHO unset)")
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		pc.WriteTo(buf[:n], from)
	}
}
