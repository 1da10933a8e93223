package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNetworkConnect: `network connect` hot-plugs a running container into
// a user network (eth1, --ip, --alias, DNS both ways), a created one joins
// at its start, `network disconnect` unplugs (names stop resolving, the
// veth goes), and the refusals say why. Through both CLIs.
func TestNetworkConnect(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			nw := uniq(t)
			web, cl, st := nw+"-web", nw+"-cl", nw+"-st"
			subnet := testSubnet(2 + i)
			prefix := strings.TrimSuffix(subnet, "0/24")
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", web, cl, st)
				e.docker(t, "network", "rm", nw)
			})
			must(t, cli("network", "create", "--subnet", subnet, nw))
			must(t, cli(append([]string{"run", "-d", "--name", web, "--network", nw}, httpdArgs("hi-"+nw)...)...))
			// cl runs on the default bridge: the user network's names are unknown to it
			must(t, cli("run", "-d", "--name", cl, "busybox", "sleep", "300"))
			if r := cli("exec", cl, "wget", "-qO-", "http://"+web+"/"); r.code == 0 {
				t.Fatalf("a default-bridge container fetched %s by name before connect: %s", web, r)
			}

			// hot-plug with --ip and --alias
			must(t, cli("network", "connect", "--ip", prefix+"77", "--alias", "cl-alias", nw, cl))
			if out := must(t, cli("exec", cl, "ip", "-o", "-4", "addr", "show", "eth1")).stdout; !strings.Contains(out, prefix+"77/24") {
				t.Fatalf("eth1 of %s after connect: %q, want %s77/24", cl, out, prefix)
			}
			r := retry(t, func() result { return cli("exec", cl, "wget", "-qO-", "http://"+web+"/") })
			if r.code != 0 || strings.TrimSpace(r.stdout) != "hi-"+nw {
				t.Fatalf("wget http://%s/ after connect: %s", web, r)
			}
			must(t, cli("exec", web, "ping", "-c1", "-W2", "cl-alias"))
			must(t, cli("exec", web, "ping", "-c1", "-W2", cl))
			// the default bridge still routes cl's traffic: eth0 keeps the default route
			if out := must(t, cli("exec", cl, "ip", "route")).stdout; !strings.Contains(out, "default via") || strings.Contains(out, "default via "+prefix) {
				t.Fatalf("routes of %s after connect:\n%s", cl, out)
			}
			ins := must(t, cli("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}`, cl)).stdout
			if !strings.Contains(ins, "bridge=10.") || !strings.Contains(ins, nw+"="+prefix+"77") {
				t.Fatalf("inspect networks of %s = %q; want bridge and %s=%s77", cl, ins, nw, prefix)
			}
			nins := must(t, cli("network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{end}}`, nw)).stdout
			if !strings.Contains(nins, cl) || !strings.Contains(nins, web) {
				t.Fatalf("network inspect containers = %q, want %s and %s", nins, web, cl)
			}

			// refusals
			if r := cli("network", "connect", nw, cl); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
				t.Fatalf("second connect: want 'already exists', got %s", r)
			}
			if r := cli("network", "connect", nw, "no-such-container-"+nw); r.code == 0 || !strings.Contains(r.stderr, "No such container") {
				t.Fatalf("connect of a missing container: %s", r)
			}
			if r := cli("network", "connect", "no-such-network-"+nw, cl); r.code == 0 || !strings.Contains(r.stderr, "not found") {
				t.Fatalf("connect to a missing network: %s", r)
			}

			// a created container joins at its start
			must(t, cli("create", "--name", st, "busybox", "sleep", "300"))
			must(t, cli("network", "connect", "--alias", "st-alias", nw, st))
			if out := must(t, cli("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, st)).stdout; !strings.Contains(out, nw) {
				t.Fatalf("inspect of a created, connected container: networks %q", out)
			}
			must(t, cli("start", st))
			must(t, cli("exec", cl, "ping", "-c1", "-W2", "st-alias"))
			r = retry(t, func() result { return cli("exec", st, "wget", "-qO-", "http://"+web+"/") })
			if r.code != 0 || strings.TrimSpace(r.stdout) != "hi-"+nw {
				t.Fatalf("wget from the started container: %s", r)
			}
			if r := cli("network", "rm", nw); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
				t.Fatalf("network rm with connected containers: %s", r)
			}

			// disconnect: the interface and the names go
			clID := strings.TrimSpace(must(t, cli("inspect", "-f", "{{.Id}}", cl)).stdout)
			must(t, cli("network", "disconnect", nw, cl))
			if out := must(t, cli("exec", cl, "ls", "/sys/class/net")).stdout; strings.Contains(out, "eth1") {
				t.Fatalf("eth1 still in %s after disconnect: %q", cl, out)
			}
			if out, _ := exec.Command("ip", "-o", "link").CombinedOutput(); strings.Contains(string(out), "vx"+clID[:8]) {
				t.Fatalf("host veth of %s left after disconnect:\n%s", cl, grepLines(string(out), "vx"+clID[:8]))
			}
			if r := cli("exec", web, "ping", "-c1", "-W1", "cl-alias"); r.code == 0 {
				t.Fatalf("cl-alias still resolves after disconnect: %s", r)
			}
			if out := must(t, cli("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, cl)).stdout; strings.Contains(out, nw) {
				t.Fatalf("inspect still lists %s after disconnect: %q", nw, out)
			}
			if r := cli("network", "disconnect", nw, cl); r.code == 0 || !strings.Contains(r.stderr, "not connected") {
				t.Fatalf("second disconnect: want 'not connected', got %s", r)
			}
			must(t, cli("network", "disconnect", "-f", nw, "no-such-container-"+nw))
			// reconnect works and takes the next address
			must(t, cli("network", "connect", nw, cl))
			must(t, cli("exec", web, "ping", "-c1", "-W2", cl))
			evs := must(t, cli("events", "--since", "5m", "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()), "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}")).stdout
			for _, want := range []string{"create " + nw + " ", "connect " + nw + " " + clID, "disconnect " + nw + " " + clID} {
				if !strings.Contains(evs, want) {
					t.Fatalf("network events lack %q:\n%s", want, evs)
				}
			}
		})
	}
}

// userNetwork creates the user network nw on testSubnet(n) with the
// docker CLI; when the test ends the containers named go, then nw.
func (e *env) userNetwork(t *testing.T, nw string, n int, containers ...string) {
	t.Helper()
	must(t, e.docker(t, "network", "create", "--subnet", testSubnet(n), nw))
	t.Cleanup(func() {
		if len(containers) > 0 {
			e.docker(t, append([]string{"rm", "-f"}, containers...)...)
		}
		e.docker(t, "network", "rm", nw)
	})
}

// TestNetworkConnectRefused: containers that share another namespace
// cannot join a network.
func TestNetworkConnectRefused(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	h, none := nw+"-host", nw+"-none"
	e.userNetwork(t, nw, 8, h, none)
	must(t, e.docker(t, "create", "--name", h, "--network", "host", "busybox", "true"))
	must(t, e.docker(t, "create", "--name", none, "--network", "none", "busybox", "true"))
	for c, want := range map[string]string{h: "host network", none: "private (none) mode"} {
		if r := e.docker(t, "network", "connect", nw, c); r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("connect of %s: want %q, got %s", c, want, r)
		}
	}
}

// TestNetworkRunTwoNetworks: `run --network a --network b` joins both
// (eth0 on a with the default route, eth1 on b), names resolve on each,
// and a restart plugs both in again. Through both CLIs.
func TestNetworkRunTwoNetworks(t *testing.T) {
	e := daemonEnv(t)
	for _, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			nw := uniq(t)
			a, b := nw+"-a", nw+"-b"
			c, pa, pb := nw+"-c", nw+"-pa", nw+"-pb"
			must(t, cli("network", "create", "--subnet", testSubnet(11), a))
			must(t, cli("network", "create", "--subnet", testSubnet(12), b))
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", c, pa, pb)
				e.docker(t, "network", "rm", a, b)
			})
			must(t, cli("run", "-d", "--name", pa, "--network", a, "busybox", "sleep", "300"))
			must(t, cli("run", "-d", "--name", pb, "--network", b, "busybox", "sleep", "300"))
			must(t, cli("run", "-d", "--name", c, "--network", a, "--network", b, "busybox", "sleep", "300"))
			check := func() {
				t.Helper()
				if out := must(t, cli("exec", c, "ip", "route")).stdout; !strings.Contains(out, "default via "+strings.TrimSuffix(testSubnet(11), "0/24")+"1 dev eth0") ||
					!strings.Contains(out, testSubnet(12)+" dev eth1") {
					t.Fatalf("routes of a container on two networks:\n%s", out)
				}
				must(t, cli("exec", c, "ping", "-c1", "-W2", pa))
				must(t, cli("exec", c, "ping", "-c1", "-W2", pb))
				must(t, cli("exec", pb, "ping", "-c1", "-W2", c))
			}
			check()
			must(t, cli("restart", "-t", "0", c))
			check()
			id := strings.TrimSpace(must(t, cli("inspect", "-f", "{{.Id}}", c)).stdout)
			must(t, cli("rm", "-f", c))
			out, _ := exec.Command("ip", "-o", "link").CombinedOutput()
			if strings.Contains(string(out), "vx"+id[:8]) {
				t.Fatalf("joined veth of a removed container is left:\n%s", grepLines(string(out), "vx"+id[:8]))
			}
		})
	}
}

// TestNetworkConnectSurvivesRestart: after a daemon restart, containers
// joined to a network (neither has it as its first network) still find
// each other by name, since the network's DNS server starts again, and
// disconnect and rm still remove their interfaces.
func TestNetworkConnectSurvivesRestart(t *testing.T) {
	e := privateDaemon(t, nil)
	nw := uniq(t)
	web, cl := nw+"-web", nw+"-cl"
	e.userNetwork(t, nw, 8, web, cl)
	must(t, e.docker(t, append([]string{"run", "-d", "--name", web}, httpdArgs("joined-"+nw)...)...))
	must(t, e.docker(t, "run", "-d", "--name", cl, "busybox", "sleep", "300"))
	must(t, e.docker(t, "network", "connect", nw, web))
	must(t, e.docker(t, "network", "connect", nw, cl))
	e.stop()
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	r := retry(t, func() result { return e.docker(t, "exec", cl, "wget", "-qO-", "http://"+web+"/") })
	if r.code != 0 || strings.TrimSpace(r.stdout) != "joined-"+nw {
		t.Fatalf("wget by name after a daemon restart: %s", r)
	}
	id := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", cl)).stdout)
	must(t, e.docker(t, "network", "disconnect", nw, cl))
	out, _ := exec.Command("ip", "-o", "link").CombinedOutput()
	if strings.Contains(string(out), "vx"+id[:8]) {
		t.Fatalf("veth left after disconnect following a restart:\n%s", grepLines(string(out), "vx"+id[:8]))
	}
}

// TestNetworkDisconnectStale: a created container joined to a network that
// is removed before its start fails to start, naming the network, until
// `network disconnect -f` drops the stale membership.
func TestNetworkDisconnectStale(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	c := nw + "-c"
	e.userNetwork(t, nw, 13, c)
	must(t, e.docker(t, "create", "--name", c, "busybox", "sleep", "300"))
	must(t, e.docker(t, "network", "connect", nw, c))
	must(t, e.docker(t, "network", "rm", nw)) // no running container uses it
	if r := e.docker(t, "start", c); r.code == 0 || !strings.Contains(r.stderr, nw) || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("start with a removed network: %s", r)
	}
	if r := e.docker(t, "network", "disconnect", nw, c); r.code == 0 {
		t.Fatalf("disconnect from a removed network without -f succeeded: %s", r)
	}
	must(t, e.docker(t, "network", "disconnect", "-f", nw, c))
	must(t, e.docker(t, "start", c))
}

// TestNetworkDisconnectFirst: a running container moved off its first
// network (the default bridge) keeps running on the network it joined,
// which takes over the default route; the old network's port rule and
// veth go; the last network cannot be taken away while it runs. Through
// both CLIs.
func TestNetworkDisconnectFirst(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			nw := uniq(t)
			x, peer := nw+"-x", nw+"-peer"
			subnet := testSubnet(14 + i)
			port := freePort(t)
			must(t, cli("network", "create", "--subnet", subnet, nw))
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", x, peer)
				e.docker(t, "network", "rm", nw)
			})
			must(t, cli("run", "-d", "--name", peer, "--network", nw, "busybox", "sleep", "300"))
			must(t, cli("run", "-d", "--name", x, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "300"))
			id := strings.TrimSpace(must(t, cli("inspect", "-f", "{{.Id}}", x)).stdout)
			must(t, cli("network", "connect", nw, x))
			must(t, cli("network", "disconnect", "bridge", x))
			if out := must(t, cli("exec", x, "ip", "route")).stdout; !strings.Contains(out, "default via "+strings.TrimSuffix(subnet, "0/24")+"1") {
				t.Fatalf("routes after leaving the first network:\n%s", out)
			}
			if out := must(t, cli("exec", x, "ls", "/sys/class/net")).stdout; strings.Contains(out, "eth0") {
				t.Fatalf("eth0 still there after leaving the first network: %q", out)
			}
			must(t, cli("exec", x, "ping", "-c1", "-W2", peer))
			must(t, cli("exec", peer, "ping", "-c1", "-W2", x))
			if out := strings.TrimSpace(must(t, cli("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, x)).stdout); out != nw {
				t.Fatalf("networks after leaving the first network = %q, want %s", out, nw)
			}
			links, _ := exec.Command("ip", "-o", "link").CombinedOutput()
			if strings.Contains(string(links), "vb"+id[:11]) {
				t.Fatalf("veth of the left network is still there")
			}
			// the published port moves to the network that took over, with
			// the same host port (as with dockerd)
			br, _ := testBridge(e.dir)
			rules, _ := exec.Command("nft", "list", "table", "inet", "berth-"+br).CombinedOutput()
			if strings.Contains(string(rules), fmt.Sprintf("dport %d ", port)) {
				t.Fatalf("port rule of the left network is still there:\n%s", grepLines(string(rules), fmt.Sprint(port)))
			}
			nwIP := strings.TrimSpace(must(t, cli("inspect", "-f", "{{(index .NetworkSettings.Networks \""+nw+"\").IPAddress}}", x)).stdout)
			rules, _ = exec.Command("nft", "list", "table", "inet", "berth-br-"+netID(t, e, nw)[:12]).CombinedOutput()
			if !strings.Contains(string(rules), fmt.Sprintf("dport %d dnat ip to %s:80", port, nwIP)) {
				t.Fatalf("port %d is not published on %s (%s) after the handover:\n%s", port, nw, nwIP, rules)
			}
			if out := strings.TrimSpace(must(t, cli("port", x, "80")).stdout); out != fmt.Sprintf("127.0.0.1:%d", port) {
				t.Fatalf("port %s 80 after the handover = %q", x, out)
			}
			must(t, cli("exec", "-d", x, "httpd", "-p", "80", "-h", "/etc"))
			if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); strings.TrimSpace(got) == "" {
				t.Fatalf("GET through the moved port: %q", got)
			}
			// its last network too: it keeps running with lo only, as with dockerd
			must(t, cli("network", "disconnect", nw, x))
			if out := strings.Fields(must(t, cli("exec", x, "ls", "/sys/class/net")).stdout); len(out) != 1 || out[0] != "lo" {
				t.Fatalf("interfaces after leaving the last network = %q, want lo only", out)
			}
			if out := strings.TrimSpace(must(t, cli("inspect", "-f", `{{.State.Running}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, x)).stdout); out != "true none" {
				t.Fatalf("state and networks after leaving the last network = %q, want running on none", out)
			}
			if out := must(t, cli("network", "inspect", "-f", "{{len .Containers}}", nw)).stdout; strings.TrimSpace(out) != "1" {
				t.Fatalf("%s lists %s containers after %s left, want only %s", nw, strings.TrimSpace(out), x, peer)
			}
			links, _ = exec.Command("ip", "-o", "link").CombinedOutput()
			if strings.Contains(string(links), "vx"+id[:8]) {
				t.Fatalf("veth of the last network is still there:\n%s", grepLines(string(links), "vx"+id[:8]))
			}
			// and it can join again: that network becomes its first one
			must(t, cli("network", "connect", nw, x))
			if out := strings.TrimSpace(must(t, cli("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, x)).stdout); out != nw {
				t.Fatalf("networks after connecting again = %q, want %s", out, nw)
			}
			if out := must(t, cli("exec", x, "ip", "route")).stdout; !strings.Contains(out, "default via "+strings.TrimSuffix(subnet, "0/24")+"1") {
				t.Fatalf("routes after connecting again:\n%s", out)
			}
			must(t, cli("exec", x, "ping", "-c1", "-W2", peer))
			must(t, cli("exec", peer, "ping", "-c1", "-W2", x))
			must(t, cli("rm", "-f", x))
			if _, err := os.Stat(e.execRoot + "/netns/" + id); err == nil {
				t.Fatalf("netns of %s left after rm", x)
			}
		})
	}
}

// TestNetworkConnectBridge: a container on a user network joins and leaves
// the default bridge too (no aliases there, as with dockerd).
func TestNetworkConnectBridge(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	y, z := nw+"-y", nw+"-z"
	e.userNetwork(t, nw, 13, y, z)
	must(t, e.docker(t, "run", "-d", "--name", z, "busybox", "sleep", "300"))
	zIP := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", z)).stdout)
	must(t, e.docker(t, "run", "-d", "--name", y, "--network", nw, "busybox", "sleep", "300"))
	if r := e.docker(t, "network", "connect", "--alias", "yy", "bridge", y); r.code == 0 || !strings.Contains(r.stderr, "user defined networks only") {
		t.Fatalf("connect to the default bridge with an alias: %s", r)
	}
	must(t, e.docker(t, "network", "connect", "bridge", y))
	_, subnet := testBridge(e.dir)
	if ip := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", y)).stdout); !strings.HasPrefix(ip, strings.TrimSuffix(subnet, "0/24")) {
		t.Fatalf("default-bridge address of %s = %q, want one of %s", y, ip, subnet)
	}
	must(t, e.docker(t, "exec", y, "ping", "-c1", "-W2", zIP))
	// the default bridge lists its containers, as dockerd's does
	bridgeMembers := func() string {
		t.Helper()
		return must(t, e.docker(t, "network", "inspect", "-f", `{{range .IPAM.Config}}{{.Subnet}}{{end}} {{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}`, "bridge")).stdout
	}
	yIP := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", y)).stdout)
	if out := bridgeMembers(); !strings.HasPrefix(out, subnet+" ") || !strings.Contains(out, " "+z+"="+zIP+"/24 ") || !strings.Contains(out, " "+y+"="+yIP+"/24 ") {
		t.Fatalf("network inspect bridge = %q, want subnet %s and %s=%s, %s=%s", out, subnet, z, zIP, y, yIP)
	}
	must(t, e.docker(t, "network", "disconnect", "bridge", y))
	if out := bridgeMembers(); strings.Contains(out, " "+y+"=") || !strings.Contains(out, " "+z+"=") {
		t.Fatalf("network inspect bridge after %s left = %q", y, out)
	}
	if out := must(t, e.docker(t, "exec", y, "ls", "/sys/class/net")).stdout; strings.Contains(out, "eth1") {
		t.Fatalf("%s keeps its default-bridge interface after disconnect: %q", y, out)
	}
	if out := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, y)).stdout); out != nw {
		t.Fatalf("networks of %s after leaving the default bridge = %q", y, out)
	}
}
