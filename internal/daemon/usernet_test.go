package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"berth/internal/errdefs"
)

func TestNetworkIPAndAliases(t *testing.T) {
	ip := netip.MustParseAddr("10.210.5.9")
	nc := func(key string) *network.NetworkingConfig {
		return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			key: {Aliases: []string{"db", "cache"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
		}}
	}
	if got, got6, err := networkIP(nc("mynet"), "mynet"); err != nil || got != ip || got6.IsValid() {
		t.Fatalf("networkIP on a user network = %v, %v, %v; want %s", got, got6, err, ip)
	}
	for _, mode := range []container.NetworkMode{"bridge", "host", "none"} {
		if _, _, err := networkIP(nc("default"), mode); !errdefs.IsInvalidParameter(err) {
			t.Fatalf("networkIP on %s: %v, want InvalidParameter", mode, err)
		}
	}
	if got, _, err := networkIP(nil, "mynet"); err != nil || got.IsValid() {
		t.Fatalf("networkIP without config = %v, %v", got, err)
	}
	ip6 := netip.MustParseAddr("fd00:5::9")
	v6 := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		"mynet": {IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: ip6}},
	}}
	if got, got6, err := networkIP(v6, "mynet"); err != nil || got.IsValid() || got6 != ip6 {
		t.Fatalf("networkIP with --ip6 only = %v, %v, %v; want %s", got, got6, err, ip6)
	}
	swapped := &network.EndpointIPAMConfig{IPv4Address: ip6, IPv6Address: ip}
	if _, _, err := staticIPs(swapped); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("--ip %s --ip6 %s: %v, want InvalidParameter", ip6, ip, err)
	}
	if got := networkAliases(nc("mynet"), "mynet"); len(got) != 2 || got[0] != "db" {
		t.Fatalf("networkAliases = %v", got)
	}
	if got := networkAliases(nc("other"), "mynet"); got != nil {
		t.Fatalf("aliases of another network = %v", got)
	}
}

// TestLabelMatch: every label filter must match (docker's AND of
// --filter label=... on networks and volumes).
func TestLabelMatch(t *testing.T) {
	labels := map[string]string{"a": "1", "b": ""}
	for f, want := range map[string]bool{"a": true, "a=1": true, "a=2": false, "b": true, "b=": true, "c": false} {
		if got := matchLabels(map[string]bool{f: true}, labels); got != want {
			t.Errorf("matchLabels(%q) = %v, want %v", f, got, want)
		}
	}
	if !matchLabels(map[string]bool{"a=1": true, "b": true}, labels) {
		t.Error("a=1 and b: both present, no match")
	}
	if matchLabels(map[string]bool{"a=1": true, "c": true}, labels) {
		t.Error("a=1 and c: c is missing, still matched")
	}
}

func TestDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{
		"web": true, "Web-1": true, "a": true, "0abc": true,
		"a_b": false, "a.b": false, "-a": false, "a-": false, "": false,
		"x234567890123456789012345678901234567890123456789012345678901234": false, // 64
	} {
		if got := dnsLabel(s); got != want {
			t.Errorf("dnsLabel(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNameMatches(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for name, want := range map[string]bool{"web": true, "WEB": true, "0123456789ab": true, id: true, "www": true, "other": false, "0123": false} {
		if got := nameMatches(endpointDNSNames("/web", id, "", []string{"www"}), id, name); got != want {
			t.Errorf("nameMatches(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestEndpointDNSNames: dockerd's order and the hostname (TestHostnameDnsResolution
// in moby's suite resolves a container by its --hostname).
func TestEndpointDNSNames(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	got := endpointDNSNames("/web", id, "foobar", []string{"www", "web"})
	if want := []string{"web", "www", "0123456789ab", "foobar"}; !slices.Equal(got, want) {
		t.Fatalf("endpointDNSNames = %q, want %q", got, want)
	}
	// the default hostname is the short ID: listed once
	if got := endpointDNSNames("/web", id, id[:12], nil); !slices.Equal(got, []string{"web", "0123456789ab"}) {
		t.Fatalf("endpointDNSNames with the default hostname = %q", got)
	}
	plain := endpointDNSNames("/web", id, "", nil)
	if !nameMatches(plain, id, "WEB") || nameMatches(plain, id, "foobar") || !nameMatches(endpointDNSNames("/web", id, "foobar", nil), id, "FooBar") {
		t.Fatal("nameMatches with the hostname")
	}
}
