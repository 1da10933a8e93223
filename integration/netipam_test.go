package integration

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// TestNetworkCustomIPAM (both CLIs): `network create --gateway` anywhere in
// the subnet, `--ip-range` a sub-prefix dynamic addresses come from, and
// `--aux-address` reserved names, as dockerd: inspect shows them, the
// bridge carries the gateway (the containers' default route), dynamic
// addresses stay in the range and off the auxiliary address, a static
// `--ip` may be outside the range but not on a reserved address.
func TestNetworkCustomIPAM(t *testing.T) {
	e := daemonEnv(t)
	subnet := netip.MustParsePrefix(testSubnet(9))
	at := func(n byte) string {
		a := subnet.Addr().As4()
		a[3] = n
		return netip.AddrFrom4(a).String()
	}
	rng := netip.PrefixFrom(netip.MustParseAddr(at(128)), 29) // .128-.135
	for _, which := range []string{"docker", "berth"} {
		t.Run(which, func(t *testing.T) {
			nw := uniq(t)
			must(t, e.cli(t, which, "network", "create", "--subnet", subnet.String(), "--gateway", at(254),
				"--ip-range", rng.String(), "--aux-address", "router="+at(129), "--aux-address", "printer="+at(20), nw))
			var names []string
			t.Cleanup(func() {
				e.docker(t, append([]string{"rm", "-f"}, names...)...)
				e.docker(t, "network", "rm", nw)
			})
			var cfg []struct {
				Subnet, Gateway, IPRange string
				AuxiliaryAddresses       map[string]string
			}
			out := must(t, e.cli(t, which, "network", "inspect", "-f", "{{json .IPAM.Config}}", nw)).stdout
			if err := json.Unmarshal([]byte(out), &cfg); err != nil || len(cfg) != 1 {
				t.Fatalf("IPAM.Config = %s (%v)", out, err)
			}
			if c := cfg[0]; c.Gateway != at(254) || c.IPRange != rng.String() || c.AuxiliaryAddresses["router"] != at(129) || c.AuxiliaryAddresses["printer"] != at(20) {
				t.Fatalf("IPAM.Config = %s", out)
			}
			// dynamic addresses stay in .128-.135 and skip the auxiliary .129
			for i := range 3 {
				name := nw + "-" + string(rune('a'+i))
				names = append(names, name)
				must(t, e.cli(t, which, "run", "-d", "--name", name, "--network", nw, "busybox", "sleep", "300"))
				ip := strings.TrimSpace(must(t, e.cli(t, which, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)).stdout)
				a, err := netip.ParseAddr(ip)
				if err != nil || !rng.Contains(a) || ip == at(129) {
					t.Fatalf("container %d got %q: want an address of %s other than %s", i, ip, rng, at(129))
				}
			}
			r := must(t, e.cli(t, which, "exec", names[0], "ip", "route"))
			if !strings.Contains(r.stdout, "default via "+at(254)) {
				t.Fatalf("routes of a container: want the default via %s:\n%s", at(254), r.stdout)
			}
			must(t, e.cli(t, which, "exec", names[0], "ping", "-c1", "-W2", at(254)))
			must(t, e.cli(t, which, "exec", names[1], "ping", "-c1", "-W2", names[0]))
			// a static address outside the range
			st := nw + "-s"
			names = append(names, st)
			must(t, e.cli(t, which, "run", "-d", "--name", st, "--network", nw, "--ip", at(10), "busybox", "sleep", "300"))
			must(t, e.cli(t, which, "exec", st, "ping", "-c1", "-W2", names[0]))
			for _, bad := range []string{at(129), at(20), at(254)} {
				name := nw + "-x"
				names = append(names, name)
				if r := e.cli(t, which, "run", "-d", "--name", name, "--network", nw, "--ip", bad, "busybox", "true"); r.code == 0 {
					t.Fatalf("--ip %s (reserved) accepted", bad)
				}
				e.docker(t, "rm", "-f", name)
			}
			r = e.cli(t, which, "network", "create", "--subnet", testSubnet(10), "--gateway", strings.TrimSuffix(testSubnet(10), "0/24")+"255", nw+"-bad")
			if r.code == 0 || !strings.Contains(r.stderr, "gateway") {
				e.docker(t, "network", "rm", nw+"-bad")
				t.Fatalf("the broadcast address as gateway: %s", r)
			}
			r = e.cli(t, which, "network", "create", "--subnet", testSubnet(10), "--ip-range", subnet.String(), nw+"-bad")
			if r.code == 0 || !strings.Contains(r.stderr, "range") {
				e.docker(t, "network", "rm", nw+"-bad")
				t.Fatalf("an ip-range outside the subnet: %s", r)
			}
		})
	}
}
