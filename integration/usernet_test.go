package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// userNetSubnet is a /24 of berth's user network pool unique to this test
// binary, so parallel test daemons never put the same subnet on two bridges.
func userNetSubnet() string {
	return fmt.Sprintf("10.210.%d.0/24", 200+os.Getpid()%50)
}

// TestUserNetworkDNS: two containers on a user-defined network reach each
// other by name and by alias through the network's embedded DNS; inspect
// lists both; rm refuses while in use; nothing is left on the host after.
func TestUserNetworkDNS(t *testing.T) {
	e := daemonEnv(t)
	nw, web, client := uniq(t), uniq(t)+"-web", uniq(t)+"-cl"
	subnet := userNetSubnet()
	id := strings.TrimSpace(must(t, e.docker(t, "network", "create", "--subnet", subnet, "--label", "berth.test=usernet", nw)).stdout)
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", web, client)
		e.docker(t, "network", "rm", nw)
	})
	if r := e.docker(t, "network", "create", nw); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate network create: want an 'already exists' error, got %s", r)
	}
	if out := must(t, e.docker(t, "network", "ls", "--filter", "label=berth.test=usernet", "--format", "{{.Name}}")).stdout; strings.TrimSpace(out) != nw {
		t.Fatalf("network ls by label = %q, want %q", out, nw)
	}

	must(t, e.docker(t, append([]string{"run", "-d", "--name", web, "--network", nw, "--network-alias", "web-alias"}, httpdArgs("hello-"+nw)...)...))
	clientIP := strings.TrimSuffix(subnet, "0/24") + "77"
	must(t, e.docker(t, "run", "-d", "--name", client, "--network", nw, "--ip", clientIP, "busybox", "sleep", "300"))
	if got := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+nw+"\").IPAddress}}", client)).stdout); got != clientIP {
		t.Fatalf("client's --ip address = %q, want %s", got, clientIP)
	}
	// the web server sees the client by name too
	must(t, e.docker(t, "exec", web, "ping", "-c1", "-W2", client))

	for _, host := range []string{web, "web-alias"} {
		var r result
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			r = e.docker(t, "exec", client, "wget", "-qO-", "http://"+host+"/")
			if r.code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("wget http://%s/: %s", host, r)
			}
		}
		if got := strings.TrimSpace(r.stdout); got != "hello-"+nw {
			t.Fatalf("wget http://%s/ = %q, want %q", host, got, "hello-"+nw)
		}
	}
	must(t, e.docker(t, "exec", client, "ping", "-c1", "-W2", web))
	if out := must(t, e.docker(t, "exec", client, "cat", "/etc/resolv.conf")).stdout; !strings.Contains(out, "nameserver 10.210.") {
		t.Fatalf("resolv.conf does not point at the network's DNS:\n%s", out)
	}
	// an unknown bare name is NXDOMAIN, answered locally
	if r := e.docker(t, "exec", client, "wget", "-qO-", "http://no-such-container-here/"); r.code == 0 {
		t.Fatalf("wget of an unknown name succeeded: %s", r)
	}

	var ins []struct {
		Name string
		Id   string
		IPAM struct {
			Config []struct{ Subnet, Gateway string }
		}
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(must(t, e.docker(t, "network", "inspect", nw)).stdout), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("network inspect: %v %v", err, ins)
	}
	if ins[0].Id != id || ins[0].IPAM.Config[0].Subnet != subnet || len(ins[0].Containers) != 2 {
		t.Fatalf("network inspect = %+v; want id %s, subnet %s, 2 containers", ins[0], id, subnet)
	}
	names := map[string]bool{}
	for _, c := range ins[0].Containers {
		names[c.Name] = true
	}
	if !names[web] || !names[client] {
		t.Fatalf("network inspect containers = %v, want %s and %s", names, web, client)
	}

	if r := e.docker(t, "network", "rm", nw); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
		t.Fatalf("network rm while in use: want an 'active endpoints' error, got %s", r)
	}
	must(t, e.docker(t, "rm", "-f", web, client))
	must(t, e.docker(t, "network", "rm", nw))

	bridge := "br-" + id[:12]
	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
		t.Fatalf("bridge %s is left after network rm:\n%s", bridge, out)
	}
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), bridge) {
		t.Fatalf("nftables table of %s is left after network rm:\n%s", bridge, out)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").CombinedOutput(); strings.Contains(string(out), "master "+bridge) {
		t.Fatalf("veths on %s are left:\n%s", bridge, out)
	}
	if r := e.docker(t, "network", "inspect", nw); r.code == 0 {
		t.Fatalf("network inspect after rm succeeded: %s", r)
	}
}

// TestUserNetworkBuiltins: the builtin networks cannot be created or
// removed, and --ip needs a user-defined network.
func TestUserNetworkBuiltins(t *testing.T) {
	e := daemonEnv(t)
	if r := e.docker(t, "run", "--rm", "--ip", "10.209.0.99", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "user defined networks only") {
		t.Fatalf("--ip on the default bridge: want an error, got %s", r)
	}
	for _, args := range [][]string{{"network", "create", "bridge"}, {"network", "rm", "host"}} {
		if r := e.docker(t, args...); r.code == 0 || !strings.Contains(r.stderr, "pre-defined") {
			t.Fatalf("docker %v: want a 'pre-defined' error, got %s", args, r)
		}
	}
}

// TestUserNetworkBerthCLI: berth's own network verbs round-trip.
func TestUserNetworkBerthCLI(t *testing.T) {
	e := daemonEnv(t)
	nw := uniq(t)
	subnet := fmt.Sprintf("10.210.%d.0/24", 150+os.Getpid()%50)
	id := strings.TrimSpace(must(t, e.berth(t, "network", "create", "--subnet", subnet, "--label", "k=v", nw)).stdout)
	t.Cleanup(func() { e.berth(t, "network", "rm", "-f", nw) })
	if out := strings.TrimSpace(must(t, e.berth(t, "network", "ls", "-q", "--no-trunc", "-f", "label=k=v", "-f", "name="+nw)).stdout); out != id {
		t.Fatalf("berth network ls -q = %q, want %q", out, id)
	}
	if out := strings.TrimSpace(must(t, e.berth(t, "network", "inspect", "-f", "{{.Name}} {{(index .IPAM.Config 0).Gateway}}", id[:12])).stdout); out != nw+" "+strings.TrimSuffix(subnet, "0/24")+"1" {
		t.Fatalf("berth network inspect = %q", out)
	}
	must(t, e.berth(t, "network", "rm", nw))
	if r := e.berth(t, "network", "rm", nw); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("second rm: want 'not found', got %s", r)
	}
}

// TestUserNetworkInternal: an --internal network's containers have no
// route off their subnet but still find each other by name.
func TestUserNetworkInternal(t *testing.T) {
	e := daemonEnv(t)
	nw, a := uniq(t), uniq(t)+"-a"
	subnet := fmt.Sprintf("10.210.%d.0/24", 100+os.Getpid()%50)
	must(t, e.docker(t, "network", "create", "--internal", "--subnet", subnet, nw))
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", a)
		e.docker(t, "network", "rm", nw)
	})
	must(t, e.docker(t, "run", "-d", "--name", a, "--network", nw, "busybox", "sleep", "300"))
	out := must(t, e.docker(t, "run", "--rm", "--network", nw, "busybox", "sh", "-c", "ip route; ping -c1 -W2 "+a)).stdout
	if strings.Contains(out, "default") || !strings.Contains(out, "1 packets received") {
		t.Fatalf("internal network: want no default route and the peer reachable, got:\n%s", out)
	}
}
