package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that nobody holds right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// heldPort returns a TCP port on 127.0.0.1 that the test holds (listens
// on) until it ends: a host port someone else uses.
func heldPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// httpdArgs serves body on port 80 with busybox httpd.
func httpdArgs(body string) []string {
	return []string{"busybox", "sh", "-c", "mkdir -p /w && echo " + body + " > /w/index.html && exec httpd -f -p 80 -h /w"}
}

// fetch GETs url until it answers (the server may still be starting).
func fetch(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return string(b)
		}
		last = fmt.Errorf("status %s, read err %v", resp.Status, err)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

type netState struct {
	id, ip string
}

func inspectNet(t *testing.T, e *env, name string) netState {
	t.Helper()
	r := must(t, e.docker(t, "inspect", "-f", "{{.Id}} {{.NetworkSettings.Networks.bridge.IPAddress}}", name))
	f := strings.Fields(r.stdout)
	if len(f) != 2 {
		t.Fatalf("inspect %s: %q", name, r.stdout)
	}
	return netState{id: f[0], ip: f[1]}
}

// assertNoLeftovers checks that a removed container left no veth, netns
// mount or DNAT rule for hostPort behind.
func assertNoLeftovers(t *testing.T, e *env, st netState, hostPort int) {
	t.Helper()
	// the kernel destroys the veth with the namespace, in the background
	gone := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !gone; time.Sleep(20 * time.Millisecond) {
		_, err := net.InterfaceByName("vb" + st.id[:11])
		gone = err != nil
	}
	if !gone {
		t.Errorf("veth vb%s is left after rm", st.id[:11])
	}
	if _, err := os.Stat(filepath.Join(e.execRoot, "netns", st.id)); err == nil {
		t.Errorf("netns mount of %s is left after rm", st.id[:12])
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		bridge, _ := testBridge(e.dir)
		out, err := exec.Command(nft, "list", "table", "inet", "berth-"+bridge).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table inet berth-%s: %v: %s", bridge, err, out)
		}
		if strings.Contains(string(out), "dport "+strconv.Itoa(hostPort)+" ") || strings.Contains(string(out), st.ip+":") {
			t.Errorf("DNAT rule of %s (port %d) is left after rm:\n%s", st.ip, hostPort, out)
		}
	}
}

func TestNetworkPublishedPort(t *testing.T) {
	e := daemonEnv(t)
	for _, cli := range []string{"docker", "berth"} {
		t.Run(cli, func(t *testing.T) {
			run := e.docker
			if cli == "berth" {
				run = e.berth
			}
			name, port := uniq(t), freePort(t)
			must(t, run(t, append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, httpdArgs("hello-"+cli)...)...))
			t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
			if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello-"+cli+"\n" {
				t.Fatalf("GET via published port = %q", got)
			}
			want := fmt.Sprintf("127.0.0.1:%d\n", port)
			if r := must(t, run(t, "port", name, "80")); r.stdout != want {
				t.Fatalf("%s port %s 80 = %q, want %q", cli, name, r.stdout, want)
			}
			if r := must(t, run(t, "ps", "--filter", "name="+name, "--format", "{{.Ports}}")); !strings.Contains(r.stdout, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
				t.Fatalf("ps ports = %q", r.stdout)
			}
			st := inspectNet(t, e, name)
			_, subnet := testBridge(e.dir)
			if !strings.HasPrefix(st.ip, strings.TrimSuffix(subnet, "0/24")) {
				t.Fatalf("container address %s is not in %s", st.ip, subnet)
			}
			// the bridge's address reaches the container directly, too
			if got := fetch(t, "http://"+st.ip+"/"); got != "hello-"+cli+"\n" {
				t.Fatalf("GET via container address = %q", got)
			}
			must(t, e.docker(t, "rm", "-f", name))
			assertNoLeftovers(t, e, st, port)
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond); err == nil {
				c.Close()
				t.Fatalf("port %d still answers after rm -f", port)
			}
		})
	}
}

func TestNetworkPublishAllAndInspect(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", name, "--expose", "80", "-P"}, httpdArgs("all")...)...))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	r := must(t, e.docker(t, "port", name, "80/tcp"))
	_, p, ok := strings.Cut(strings.Fields(r.stdout)[0], ":")
	if !ok || p == "0" {
		t.Fatalf("docker port after -P = %q", r.stdout)
	}
	if got := fetch(t, "http://127.0.0.1:"+p+"/"); got != "all\n" {
		t.Fatalf("GET via -P port = %q", got)
	}
	r = must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.Gateway}} {{.NetworkSettings.Networks.bridge.MacAddress}}", name))
	f := strings.Fields(r.stdout)
	_, subnet := testBridge(e.dir)
	if len(f) != 2 || f[0] != strings.TrimSuffix(subnet, "0/24")+"1" || !strings.HasPrefix(f[1], "02:42:") {
		t.Fatalf("gateway and MAC = %q (subnet %s)", r.stdout, subnet)
	}
}

func TestNetworkContainersReachEachOther(t *testing.T) {
	e := daemonEnv(t)
	srv := uniq(t)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", srv}, httpdArgs("from-"+srv)...)...))
	t.Cleanup(func() { e.docker(t, "rm", "-f", srv) })
	st := inspectNet(t, e, srv)
	fetch(t, "http://"+st.ip+"/") // up
	r := must(t, e.docker(t, "run", "--rm", "busybox", "wget", "-q", "-O", "-", "http://"+st.ip+"/"))
	if r.stdout != "from-"+srv+"\n" {
		t.Fatalf("wget from another container = %q", r.stdout)
	}
	// eth0 with the MTU and the default route via the bridge
	r = must(t, e.docker(t, "run", "--rm", "busybox", "sh", "-c", "cat /sys/class/net/eth0/mtu; ip route"))
	_, subnet := testBridge(e.dir)
	if !strings.HasPrefix(r.stdout, "1500\n") || !strings.Contains(r.stdout, "default via "+strings.TrimSuffix(subnet, "0/24")+"1") {
		t.Fatalf("eth0 MTU and routes: %q", r.stdout)
	}
}

func TestNetworkPortConflict(t *testing.T) {
	e := daemonEnv(t)
	port := heldPort(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	r := e.docker(t, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "30")
	if r.code != 125 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("run with a taken port: %s", r)
	}
	st := must(t, e.docker(t, "inspect", "-f", "{{.State.Status}} {{.Id}}", name)).stdout
	f := strings.Fields(st)
	if f[0] != "created" {
		t.Fatalf("state after a failed start = %q", st)
	}
	if _, err := net.InterfaceByName("vb" + f[1][:11]); err == nil {
		t.Errorf("veth left after a failed start")
	}
	// a second container on the same port conflicts with the first
	name2, p2 := uniq(t)+"b", freePort(t)
	must(t, e.docker(t, "run", "-d", "--name", name2, "-p", fmt.Sprintf("127.0.0.1:%d:80", p2), "busybox", "sleep", "30"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name2) })
	name3 := uniq(t) + "c"
	t.Cleanup(func() { e.docker(t, "rm", "-f", name3) })
	r = e.berth(t, "run", "-d", "--name", name3, "-p", fmt.Sprintf("127.0.0.1:%d:80", p2), "busybox", "sleep", "30")
	if r.code != 125 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("berth run on a port another container holds: %s", r)
	}
}

func TestNetworkNoneUntouched(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"))
	if strings.Fields(r.stdout)[0] != "lo" || len(strings.Fields(r.stdout)) != 1 {
		t.Fatalf("--network none interfaces: %q", r.stdout)
	}
}

// A container that keeps running while its daemon restarts keeps its
// published port (rules and netns stay; the daemon holds the port again),
// and a second container on the bridge still starts and gets its own port.
func TestNetworkSurvivesDaemonRestart(t *testing.T) {
	e := privateDaemon(t, nil)
	name, port := uniq(t), freePort(t)
	// the private daemon's cleanup kills its keeper, not the containers
	t.Cleanup(func() { e.docker(t, "rm", "-f", name, name+"b") })
	must(t, e.docker(t, append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, httpdArgs("kept")...)...))
	fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	e.stop()
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "kept\n" {
		t.Fatalf("GET after daemon restart = %q", got)
	}
	r := e.docker(t, "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "30")
	if r.code != 125 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("port of the surviving container is free again after restart: %s", r)
	}
	name2, port2 := name+"b", freePort(t)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", name2, "-p", fmt.Sprintf("127.0.0.1:%d:80", port2)}, httpdArgs("second")...)...))
	if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", port2)); got != "second\n" {
		t.Fatalf("GET of a container started after restart = %q", got)
	}
	if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "kept\n" {
		t.Fatalf("first container's port after a second start = %q", got)
	}
	st := inspectNet(t, e, name)
	must(t, e.docker(t, "rm", "-f", name))
	assertNoLeftovers(t, e, st, port)
}

// Containers reach a published port through the host's (the bridge's)
// address, the publishing container itself included (hairpin).
func TestNetworkHairpin(t *testing.T) {
	e := daemonEnv(t)
	_, subnet := testBridge(e.dir)
	gw := strings.TrimSuffix(subnet, "0/24") + "1"
	name, port := uniq(t), freePort(t)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("%s:%d:80", gw, port)}, httpdArgs("hairpin")...)...))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	url := fmt.Sprintf("http://%s:%d/", gw, port)
	fetch(t, url)
	if r := must(t, e.docker(t, "run", "--rm", "busybox", "wget", "-q", "-O", "-", url)); r.stdout != "hairpin\n" {
		t.Fatalf("another container via the published port: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "exec", name, "wget", "-q", "-O", "-", url)); r.stdout != "hairpin\n" {
		t.Fatalf("the container itself via its published port: %q", r.stdout)
	}
}

// A UDP port and a host port range: the range gives the first free port of
// it, and the UDP port gets its DNAT rule (busybox has no UDP server to
// reach it with).
func TestNetworkUDPAndRange(t *testing.T) {
	e := daemonEnv(t)
	lo := freePort(t)
	if lo > 65000 {
		lo = 40000
	}
	hold, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", lo))
	if err != nil {
		t.Skipf("port %d: %v", lo, err)
	}
	defer hold.Close()
	udp := freePort(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name,
		"-p", fmt.Sprintf("127.0.0.1:%d-%d:80", lo, lo+20),
		"-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", udp),
		"busybox", "sleep", "60"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	r := must(t, e.docker(t, "port", name, "80/tcp"))
	_, p, _ := strings.Cut(strings.TrimSpace(r.stdout), ":")
	if n, _ := strconv.Atoi(p); n <= lo || n > lo+20 {
		t.Fatalf("port from range %d-%d (first one taken) = %q", lo, lo+20, r.stdout)
	}
	if r := must(t, e.docker(t, "port", name, "5353/udp")); r.stdout != fmt.Sprintf("127.0.0.1:%d\n", udp) {
		t.Fatalf("docker port 5353/udp = %q", r.stdout)
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		bridge, _ := testBridge(e.dir)
		out, _ := exec.Command(nft, "list", "chain", "inet", "berth-"+bridge, "output").CombinedOutput()
		if !strings.Contains(string(out), fmt.Sprintf("udp dport %d dnat", udp)) {
			t.Fatalf("no UDP DNAT rule for port %d:\n%s", udp, out)
		}
	}
	// the held UDP port conflicts too
	if r := e.docker(t, "run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:53/udp", udp), "busybox", "true"); r.code != 125 {
		t.Fatalf("second container on UDP port %d: %s", udp, r)
	}
}

// TestNetworkPublishedOnHostAddress: a port published on every address is
// reached through the host's own non-loopback address too (how other
// hosts reach it; the packets stay on this host), and through 127.0.0.1.
func TestNetworkPublishedOnHostAddress(t *testing.T) {
	e := daemonEnv(t)
	var hostIP string
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "br-") || strings.HasPrefix(ifc.Name, "v") || strings.Contains(ifc.Name, "berth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && hostIP == "" {
				hostIP = ipn.IP.String()
			}
		}
	}
	if hostIP == "" {
		t.Skip("the host has no non-loopback IPv4 address")
	}
	name, port := uniq(t), freePort(t)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("%d:80", port)}, httpdArgs("any-address")...)...))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	for _, ip := range []string{hostIP, "127.0.0.1"} {
		if got := fetch(t, fmt.Sprintf("http://%s:%d/", ip, port)); got != "any-address\n" {
			t.Fatalf("GET via %s:%d = %q", ip, port, got)
		}
	}
}
