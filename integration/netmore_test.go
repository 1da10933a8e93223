package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// netID returns a network's full ID.
func netID(t *testing.T, e *env, name string) string {
	t.Helper()
	return strings.TrimSpace(must(t, e.docker(t, "network", "inspect", "-f", "{{.Id}}", name)).stdout)
}

// TestNetworkInternalIsolated: an --internal (dual-stack) network's
// containers reach each other but have no default route (IPv4 or IPv6), the network has no outbound
// masquerade rule, another bridge's address is unreachable, and ports
// cannot be published on it.
func TestNetworkInternalIsolated(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	a, b, p := nw+"-a", nw+"-b", nw+"-p"
	must(t, e.docker(t, "network", "create", "--internal", "--ipv6", "--subnet", testSubnet(6), nw))
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", a, b, p)
		e.docker(t, "network", "rm", nw)
	})
	must(t, e.docker(t, "run", "-d", "--name", a, "--network", nw, "busybox", "sleep", "300"))
	must(t, e.docker(t, "run", "-d", "--name", b, "--network", nw, "busybox", "sleep", "300"))
	must(t, e.docker(t, "exec", b, "ping", "-c1", "-W2", a))
	must(t, e.docker(t, "exec", b, "ping6", "-c1", "-W2", a))
	if out := must(t, e.docker(t, "exec", b, "sh", "-c", "ip route; ip -6 route")).stdout; strings.Contains(out, "default") {
		t.Fatalf("a container of an internal network has a default route:\n%s", out)
	}
	// the daemon's default bridge is another bridge on this host
	_, subnet := testBridge(e.dir)
	other := strings.TrimSuffix(subnet, "0/24") + "1"
	if r := e.docker(t, "exec", b, "ping", "-c1", "-W1", other); r.code == 0 {
		t.Fatalf("internal container reached %s on another bridge: %s", other, r)
	}
	id := netID(t, e, nw)
	out, err := exec.Command("nft", "list", "table", "inet", "berth-br-"+id[:12]).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table of %s: %v: %s", nw, err, out)
	}
	if masq := grepLines(string(out), "masquerade"); strings.Contains(masq, "oifname != ") {
		t.Fatalf("internal network has an outbound masquerade rule:\n%s", out)
	}
	if !strings.Contains(string(out), `oifname != "br-`+id[:12]+`" drop`) {
		t.Fatalf("internal network has no rule dropping what leaves its bridge:\n%s", out)
	}
	r := e.docker(t, "run", "-d", "--name", p, "--network", nw, "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), "busybox", "sleep", "300")
	if r.code == 0 || !strings.Contains(r.stderr, "internal network") {
		t.Fatalf("publishing a port on an internal network: %s", r)
	}
	if st := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.State.Status}}", p)).stdout); st == "running" {
		t.Fatalf("container with a refused port is %s", st)
	}
}

// TestNetworkAddHostGateway: --add-host NAME:host-gateway names the host's
// address on the container's network, reachable from it, through both CLIs.
func TestNetworkAddHostGateway(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	subnet := testSubnet(7)
	e.userNetwork(t, nw, 7)
	_, bridgeSubnet := testBridge(e.dir)
	for _, which := range []string{"docker", "berth"} {
		for _, c := range []struct{ net, gw string }{
			{"bridge", strings.TrimSuffix(bridgeSubnet, "0/24") + "1"},
			{nw, strings.TrimSuffix(subnet, "0/24") + "1"},
		} {
			r := must(t, e.cli(t, which, "run", "--rm", "--network", c.net, "--add-host", "hg:host-gateway", "busybox",
				"sh", "-c", "grep -w hg /etc/hosts && ping -c1 -W2 hg >/dev/null && echo reached"))
			if f := strings.Fields(r.stdout); len(f) != 3 || f[0] != c.gw || f[1] != "hg" || f[2] != "reached" {
				t.Fatalf("%s on %s: /etc/hosts line and ping = %q, want %s hg reached", which, c.net, r.stdout, c.gw)
			}
		}
	}
}

// TestNetworkIPv6: a dual-stack --ipv6 network gives containers IPv6
// addresses (inspect shows them), AAAA answers for names, and the two
// containers reach each other by name over IPv6.
func TestNetworkIPv6(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			nw := uniq(t)
			a, b := nw+"-a", nw+"-b"
			sub6 := netip.MustParsePrefix(fmt.Sprintf("fd42:%x:%x::/64", os.Getpid()%0xffff, i+1)).String()
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", a, b)
				e.docker(t, "network", "rm", nw)
			})
			must(t, cli("network", "create", "--ipv6", "--subnet", testSubnet(9+i), "--subnet", sub6, nw))
			var ins []struct {
				EnableIPv6 bool
				IPAM       struct {
					Config []struct{ Subnet, Gateway string }
				}
			}
			if err := json.Unmarshal([]byte(must(t, cli("network", "inspect", nw)).stdout), &ins); err != nil || len(ins) != 1 {
				t.Fatalf("network inspect: %v", err)
			}
			if !ins[0].EnableIPv6 || len(ins[0].IPAM.Config) != 2 || ins[0].IPAM.Config[1].Subnet != sub6 {
				t.Fatalf("network inspect = %+v; want EnableIPv6 and subnet %s", ins[0], sub6)
			}
			// --ip6, and a port published on the host's [::1]
			want6 := strings.TrimSuffix(sub6, "/64") + "a0"
			port6 := freePort6(t)
			must(t, cli(append([]string{"run", "-d", "--name", a, "--network", nw, "--ip6", want6, "-p", fmt.Sprintf("[::1]:%d:80", port6)}, httpdArgs("v6-"+nw)...)...))
			must(t, cli("run", "-d", "--name", b, "--network", nw, "busybox", "sleep", "300"))
			addr := strings.TrimSpace(must(t, cli("inspect", "-f", "{{(index .NetworkSettings.Networks \""+nw+"\").GlobalIPv6Address}}", a)).stdout)
			if addr != want6 {
				t.Fatalf("GlobalIPv6Address of %s = %q, want %s (--ip6)", a, addr, want6)
			}
			if got := fetch(t, fmt.Sprintf("http://[::1]:%d/", port6)); strings.TrimSpace(got) != "v6-"+nw {
				t.Fatalf("GET http://[::1]:%d/ = %q", port6, got)
			}
			if out := must(t, cli("port", a, "80")).stdout; strings.TrimSpace(out) != fmt.Sprintf("[::1]:%d", port6) {
				t.Fatalf("port %s 80 = %q, want [::1]:%d", a, out, port6)
			}
			// outbound IPv6 is masqueraded like IPv4 (traffic beyond the
			// host cannot be tested here: the rule is)
			nid := netID(t, e, nw)
			if rules, err := exec.Command("nft", "list", "table", "inet", "berth-br-"+nid[:12]).CombinedOutput(); err != nil || !regexp.MustCompile(`ip6 saddr `+regexp.QuoteMeta(sub6)+` oifname != "br-`+nid[:12]+`" masquerade`).Match(rules) {
				t.Fatalf("no IPv6 masquerade rule for %s (%v):\n%s", sub6, err, rules)
			}
			if out := must(t, cli("exec", b, "nslookup", "-type=aaaa", a)).stdout; !strings.Contains(out, addr) {
				t.Fatalf("AAAA of %s:\n%s\nwant %s", a, out, addr)
			}
			must(t, cli("exec", b, "ping6", "-c1", "-W2", a))
			if out := must(t, cli("exec", b, "ip", "-6", "route")).stdout; !strings.Contains(out, "default via "+strings.TrimSuffix(sub6, "/64")+"1") {
				t.Fatalf("IPv6 routes of %s:\n%s", b, out)
			}
			r := retry(t, func() result { return cli("exec", b, "wget", "-qO-", "http://["+addr+"]/") })
			if r.code != 0 || strings.TrimSpace(r.stdout) != "v6-"+nw {
				t.Fatalf("wget over IPv6: %s", r)
			}
			// network connect --ip6
			c := nw + "-c"
			t.Cleanup(func() { e.docker(t, "rm", "-f", c) })
			must(t, cli("run", "-d", "--name", c, "busybox", "sleep", "300"))
			wantC := strings.TrimSuffix(sub6, "/64") + "c0"
			must(t, cli("network", "connect", "--ip6", wantC, nw, c))
			if out := must(t, cli("exec", c, "ip", "-6", "addr")).stdout; !strings.Contains(out, wantC+"/64") {
				t.Fatalf("addresses of %s after connect --ip6 %s:\n%s", c, wantC, out)
			}
			if r := cli("network", "connect", "--ip6", "fd99::5", nw, b); r.code == 0 {
				t.Fatalf("connect --ip6 outside %s succeeded: %s", sub6, r)
			}
		})
	}
}

// freePort6 is a TCP port free on [::1] (skips without IPv6 loopback).
func freePort6(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNetworkBadInput: invalid and overlapping subnets are refused with
// 400 and 409 and a message naming the problem; removing a network in use
// is a 409; a host port in use fails the start with nothing left behind.
func TestNetworkBadInput(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	subnet := testSubnet(4)
	e.userNetwork(t, nw, 4)
	_, bridgeSubnet := testBridge(e.dir)
	cases := []struct {
		subnet string
		status int
		want   string
	}{
		{strings.TrimSuffix(subnet, "0/24") + "7/24", 400, "it should be " + subnet},
		{strings.TrimSuffix(subnet, ".0/24") + ".128/25", 409, "overlaps with network " + nw},
		{bridgeSubnet, 409, "overlaps with the default bridge"},
		{"10.211.250.0/31", 400, "too small"},
		{"fd00:9::/64", 400, "--ipv6"},
		{"10.211.300.0/24", 400, "invalid"},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"Name":%q,"IPAM":{"Config":[{"Subnet":%q}]}}`, nw+"-bad", c.subnet)
		code, msg := e.api(t, "POST", "/networks/create", body)
		if code != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("create with subnet %s: %d %s; want %d and %q", c.subnet, code, msg, c.status, c.want)
		}
		for _, which := range []string{"docker", "berth"} {
			if r := e.cli(t, which, "network", "create", "--subnet", c.subnet, nw+"-bad"); r.code == 0 {
				t.Errorf("%s network create --subnet %s succeeded", which, c.subnet)
				e.docker(t, "network", "rm", nw+"-bad")
			}
		}
	}

	// in use: 409, for the first network and a joined one alike
	c1, c2 := nw+"-c1", nw+"-c2"
	t.Cleanup(func() { e.docker(t, "rm", "-f", c1, c2) })
	must(t, e.docker(t, "run", "-d", "--name", c1, "--network", nw, "busybox", "sleep", "300"))
	if code, msg := e.api(t, "DELETE", "/networks/"+nw, ""); code != 409 || !strings.Contains(msg, "active endpoints") {
		t.Fatalf("rm of a network in use: %d %s", code, msg)
	}
	must(t, e.docker(t, "rm", "-f", c1))
	must(t, e.docker(t, "run", "-d", "--name", c2, "busybox", "sleep", "300"))
	must(t, e.docker(t, "network", "connect", nw, c2))
	if code, msg := e.api(t, "DELETE", "/networks/"+nw, ""); code != 409 || !strings.Contains(msg, c2) {
		t.Fatalf("rm of a network with a connected container: %d %s", code, msg)
	}
}

// TestNetworkPortInUse: a host port someone holds fails the start with
// docker's message through both CLIs; the container stays created, and no
// rule, veth or netns of it is left.
func TestNetworkPortInUse(t *testing.T) {
	e := daemonEnv(t)
	port := heldPort(t)
	for _, which := range []string{"docker", "berth"} {
		name := uniq(t) + "-" + which
		t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
		r := e.cli(t, which, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "300")
		if r.code != 125 || !strings.Contains(r.stderr, "address already in use") || !strings.Contains(r.stderr, fmt.Sprint(port)) {
			t.Fatalf("%s run on a taken port: %s", which, r)
		}
		f := strings.Fields(must(t, e.docker(t, "inspect", "-f", "{{.State.Status}} {{.Id}}", name)).stdout)
		if f[0] != "created" {
			t.Fatalf("%s: state after the refused start = %s", which, f[0])
		}
		id := f[1]
		if _, err := net.InterfaceByName("vb" + id[:11]); err == nil {
			t.Errorf("%s: veth left after the refused start", which)
		}
		if _, err := os.Stat(e.execRoot + "/netns/" + id); err == nil {
			t.Errorf("%s: netns left after the refused start", which)
		}
		out, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
		if strings.Contains(string(out), fmt.Sprintf("dport %d ", port)) {
			t.Errorf("%s: a DNAT rule for port %d is left:\n%s", which, port, grepLines(string(out), fmt.Sprint(port)))
		}
	}
}

// TestNetworkDNSLabel: a container name that is no DNS label ("a_b") is a
// valid container name, but berth's DNS does not answer it (see
// dnsLookup); the container's ID still resolves.
func TestNetworkDNSLabel(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	odd, cl := strings.ReplaceAll(nw, "-", "_")+"_x", nw+"-cl"
	e.userNetwork(t, nw, 5, odd, cl)
	id := strings.TrimSpace(must(t, e.docker(t, "run", "-d", "--name", odd, "--network", nw, "busybox", "sleep", "300")).stdout)
	must(t, e.docker(t, "run", "-d", "--name", cl, "--network", nw, "busybox", "sleep", "300"))
	if r := e.docker(t, "exec", cl, "ping", "-c1", "-W1", odd); r.code == 0 || !strings.Contains(r.stderr, "bad address") {
		t.Fatalf("ping of %s (not a DNS label): %s", odd, r)
	}
	must(t, e.docker(t, "exec", cl, "ping", "-c1", "-W2", id[:12]))
}

// TestNetworkIsolation: containers of two user networks do not reach each
// other's addresses (as with dockerd), except through a published port.
func TestNetworkIsolation(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	na, nb := nw+"-na", nw+"-nb"
	a, b := nw+"-a", nw+"-b"
	subA := testSubnet(15)
	must(t, e.docker(t, "network", "create", "--subnet", subA, na))
	must(t, e.docker(t, "network", "create", "--subnet", testSubnet(14), nb))
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", a, b)
		e.docker(t, "network", "rm", na, nb)
	})
	port := freePort(t)
	must(t, e.docker(t, "run", "-d", "--name", a, "--network", na, "busybox", "sleep", "300"))
	must(t, e.docker(t, append([]string{"run", "-d", "--name", b, "--network", nb, "-p", fmt.Sprintf("%d:80", port)}, httpdArgs("iso-"+nw)...)...))
	bIP := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+nb+"\").IPAddress}}", b)).stdout)
	if r := e.docker(t, "exec", a, "ping", "-c1", "-W1", bIP); r.code == 0 {
		t.Fatalf("%s on %s reached %s on %s directly", a, na, bIP, nb)
	}
	gwA := strings.TrimSuffix(subA, "0/24") + "1"
	r := retry(t, func() result { return e.docker(t, "exec", a, "wget", "-qO-", fmt.Sprintf("http://%s:%d/", gwA, port)) })
	if r.code != 0 || strings.TrimSpace(r.stdout) != "iso-"+nw {
		t.Fatalf("published port of %s from %s: %s", b, a, r)
	}
}

// TestNetworkOwnHostsEntry: /etc/hosts names the container's own address
// (with its --hostname, or its short ID), as dockerd writes it, on the
// default bridge and on a dual-stack user network, through both CLIs.
func TestNetworkOwnHostsEntry(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	must(t, e.docker(t, "network", "create", "--ipv6", "--subnet", testSubnet(7), nw))
	t.Cleanup(func() { e.docker(t, "network", "rm", nw) })
	for _, which := range []string{"docker", "berth"} {
		for _, net := range []string{"bridge", nw} {
			out := must(t, e.cli(t, which, "run", "--rm", "--network", net, "--hostname", "own-host", "busybox", "sh", "-c",
				"cat /etc/hosts; echo ---; ip -o addr show eth0")).stdout
			hosts, addrs, _ := strings.Cut(out, "---")
			var want []string
			for _, f := range strings.Fields(addrs) {
				if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsGlobalUnicast() {
					want = append(want, p.Addr().String()+"\town-host")
				}
			}
			if len(want) == 0 || net == nw && len(want) != 2 {
				t.Fatalf("%s on %s: addresses of eth0 %q", which, net, addrs)
			}
			for _, w := range want {
				if !strings.Contains(hosts, w) {
					t.Fatalf("%s on %s: /etc/hosts lacks %q:\n%s", which, net, w, hosts)
				}
			}
		}
	}
}

// TestNetworkDNSFlagsAndPrune: --dns, --dns-search, --dns-option and
// --hostname reach the container's resolv.conf and hosts file through both
// CLIs; `network prune` removes the unused networks its filter selects and
// keeps the one a container uses.
func TestNetworkDNSFlagsAndPrune(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			out := must(t, cli("run", "--rm", "--dns", "10.9.9.9", "--dns-search", "corp.test", "--dns-option", "ndots:3",
				"--hostname", "web1", "busybox", "sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname")).stdout
			resolv, rest, _ := strings.Cut(out, "---\n")
			hosts, hostname, _ := strings.Cut(rest, "---\n")
			for _, want := range []string{"nameserver 10.9.9.9\n", "search corp.test\n", "options ndots:3\n"} {
				if !strings.Contains(resolv, want) {
					t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
				}
			}
			if !regexp.MustCompile(`(?m)^\d+\.\d+\.\d+\.\d+\s+web1$`).MatchString(hosts) || strings.TrimSpace(hostname) != "web1" {
				t.Errorf("hosts file and hostname with --hostname web1:\n%s\nhostname %q", hosts, hostname)
			}

			label := "berth.prune=" + uniq(t)
			unused, used, other := uniq(t)+"-u", uniq(t)+"-used", uniq(t)+"-o"
			ctr := used + "-c"
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", ctr)
				e.docker(t, "network", "rm", unused, used, other)
			})
			// testSubnet's 16 slots are taken: a range of its own
			sub := func(k int) string { return fmt.Sprintf("10.213.%d.0/24", (3*i+k+1)*16+os.Getpid()%16) } // above the bench bridge 10.213.0.0/24
			must(t, cli("network", "create", "--label", label, "--subnet", sub(0), unused))
			must(t, cli("network", "create", "--label", label, "--subnet", sub(1), used))
			must(t, cli("network", "create", "--subnet", sub(2), other))
			must(t, cli("run", "-d", "--name", ctr, "--network", used, "busybox", "sleep", "300"))
			pr := must(t, cli("network", "prune", "-f", "--filter", "label="+label)).stdout
			if !strings.Contains(pr, unused+"\n") || strings.Contains(pr, used+"\n") || strings.Contains(pr, other+"\n") {
				t.Fatalf("network prune --filter label=%s removed:\n%s\nwant only %s", label, pr, unused)
			}
			if r := cli("network", "inspect", unused); r.code == 0 {
				t.Fatalf("%s still there after prune", unused)
			}
			must(t, cli("network", "inspect", used))
			must(t, cli("network", "inspect", other))
		})
	}
}
