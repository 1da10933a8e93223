package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSubnet is a /24 for a test's user network: slot (0-15) picks a range
// of 16 per test, the PID keeps parallel test binaries apart.
func testSubnet(slot int) string {
	return fmt.Sprintf("10.211.%d.0/24", slot*16+os.Getpid()%16)
}

// retry runs f until it exits 0 or 10 s pass (a server may still be starting).
func retry(t *testing.T, f func() result) result {
	t.Helper()
	var r result
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r = f(); r.code == 0 || time.Now().After(deadline) {
			return r
		}
	}
}

// mountsUnder lists the mount points in /proc/self/mountinfo below any of roots.
func mountsUnder(t *testing.T, roots ...string) map[string]bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		for _, r := range roots {
			if strings.HasPrefix(fs[4], r+"/") {
				out[fs[4]] = true
			}
		}
	}
	return out
}

// TestApp is issue #6's application: on a user network, busybox httpd
// serves a file from a named volume (written by a first container); a
// second container fetches it by the server's name, a third by its
// --network-alias, and the host through a port published on 127.0.0.1.
// After rm -f of the three and network rm, nothing of them is left on the
// host: nftables rules, veths, the bridge, mounts, netns files.
func TestApp(t *testing.T) {
	e := daemonEnv(t)
	for i, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			cli := func(args ...string) result { t.Helper(); return e.cli(t, which, args...) }
			nw, vol := uniq(t), uniq(t)+"-www"
			web, byName, byAlias := uniq(t)+"-web", uniq(t)+"-byname", uniq(t)+"-byalias"
			subnet := testSubnet(i)
			port := freePort(t)
			mountsBefore := mountsUnder(t, e.dataRoot, e.execRoot)
			t.Cleanup(func() {
				e.docker(t, "rm", "-f", web, byName, byAlias)
				e.docker(t, "network", "rm", nw)
				e.docker(t, "volume", "rm", vol)
			})

			netID := strings.TrimSpace(must(t, cli("network", "create", "--subnet", subnet, nw)).stdout)
			must(t, cli("volume", "create", vol))
			body := "app-" + nw
			must(t, cli("run", "--rm", "-v", vol+":/www", "busybox", "sh", "-c", "echo "+body+" > /www/index.html"))
			must(t, cli("run", "-d", "--name", web, "--network", nw, "--network-alias", "www", "-v", vol+":/www:ro",
				"-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "httpd", "-f", "-p", "80", "-h", "/www"))
			must(t, cli("run", "-d", "--name", byName, "--network", nw, "busybox", "sleep", "300"))
			must(t, cli("run", "-d", "--name", byAlias, "--network", nw, "busybox", "sleep", "300"))

			for _, c := range []struct{ from, host string }{{byName, web}, {byAlias, "www"}} {
				r := retry(t, func() result { return cli("exec", c.from, "wget", "-qO-", "http://"+c.host+"/index.html") })
				if r.code != 0 || strings.TrimSpace(r.stdout) != body {
					t.Fatalf("%s: wget http://%s/index.html = %s; want %q", c.from, c.host, r, body)
				}
			}
			if got := strings.TrimSpace(fetch(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port))); got != body {
				t.Fatalf("host GET 127.0.0.1:%d = %q, want %q", port, got, body)
			}

			var ids []string
			for _, c := range []string{web, byName, byAlias} {
				ids = append(ids, strings.TrimSpace(must(t, cli("inspect", "-f", "{{.Id}}", c)).stdout))
			}
			must(t, cli("rm", "-f", web, byName, byAlias))
			must(t, cli("network", "rm", nw))
			must(t, cli("volume", "rm", vol))
			assertAppGone(t, e, netID, subnet, port, ids, mountsBefore)
		})
	}
}

// assertAppGone checks the host for anything left of a removed network
// and its removed containers.
func assertAppGone(t *testing.T, e *env, netID, subnet string, port int, ids []string, mountsBefore map[string]bool) {
	t.Helper()
	bridge := "br-" + netID[:12]
	prefix := strings.TrimSuffix(subnet, "0/24")
	// nftables: no table of the network, no rule naming its bridge, its
	// subnet or the published port in any table
	out, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	for _, s := range []string{bridge, prefix, fmt.Sprintf("dport %d ", port)} {
		if strings.Contains(string(out), s) {
			t.Errorf("nftables still mentions %q after rm:\n%s", s, grepLines(string(out), s))
		}
	}
	// links: the kernel destroys a namespace's veths in the background
	var links string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, err := exec.Command("ip", "-o", "link").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -o link: %v: %s", err, b)
		}
		links = string(b)
		left := strings.Contains(links, bridge)
		for _, id := range ids {
			left = left || strings.Contains(links, "vb"+id[:11]) || strings.Contains(links, "vx"+id[:8])
		}
		if !left || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(links, bridge) {
		t.Errorf("bridge %s (or a port of it) is left:\n%s", bridge, grepLines(links, bridge))
	}
	for _, id := range ids {
		for _, v := range []string{"vb" + id[:11], "vx" + id[:8]} {
			if strings.Contains(links, v) {
				t.Errorf("veth %s of container %.12s is left:\n%s", v, id, grepLines(links, v))
			}
		}
		// namespaces: neither the bind mount nor the file
		if _, err := os.Stat(filepath.Join(e.execRoot, "netns", id)); err == nil {
			t.Errorf("netns file of %.12s is left", id)
		}
	}
	// mounts: none under the data and exec roots that were not there before
	for m := range mountsUnder(t, e.dataRoot, e.execRoot) {
		if !mountsBefore[m] {
			t.Errorf("mount %s is left", m)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dataRoot, "networks", netID)); err == nil {
		t.Errorf("state of network %.12s is left under the data root", netID)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
