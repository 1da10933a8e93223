package daemon

import (
	"encoding/base64"
	"strings"
	"testing"

	"berth/internal/errdefs"
)

func TestPullRef(t *testing.T) {
	for _, tc := range []struct{ from, tag, want string }{
		{"busybox", "", "docker.io/library/busybox:latest"},
		{"busybox", "1.36", "docker.io/library/busybox:1.36"},
		{"127.0.0.1:5002/apicap/busybox", "v1", "127.0.0.1:5002/apicap/busybox:v1"},
		{"127.0.0.1:5002/a", "sha256:" + strings.Repeat("c", 64), "127.0.0.1:5002/a@sha256:" + strings.Repeat("c", 64)},
		{"localhost/x:v2", "", "localhost/x:v2"},
	} {
		got, err := pullRef(tc.from, tc.tag)
		if err != nil || got.String() != tc.want {
			t.Errorf("pullRef(%q, %q) = %v, %v; want %s", tc.from, tc.tag, got, err, tc.want)
		}
	}
	if _, err := pullRef("Bad Name", ""); !errdefs.IsInvalidParameter(err) {
		t.Errorf("bad name: %v", err)
	}
}

func TestRegistryCredentials(t *testing.T) {
	enc := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ header, user, pass, token string }{
		{"", "", "", ""},
		{"e30=", "", "", ""},
		{enc(`{"username":"alice","password":"p+/w?"}`), "alice", "p+/w?", ""},
		{enc(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("bob:s:cret")) + `"}`), "bob", "s:cret", ""},
		{enc(`{"registrytoken":"tok"}`), "", "", "tok"},
	} {
		c, err := registryCredentials(tc.header)
		if err != nil || c.Username != tc.user || c.Password != tc.pass || c.RegistryToken != tc.token {
			t.Errorf("registryCredentials(%q) = %+v, %v", tc.header, c, err)
		}
	}
	// An identity token is a refresh token for the token service, not a
	// password: it must not be sent as one.
	c, err := registryCredentials(enc(`{"username":"u","identitytoken":"rt-1"}`))
	if err != nil || c.IdentityToken != "rt-1" || c.Password != "" || c.Username != "u" {
		t.Errorf("identity token header: %+v, %v", c, err)
	}
	if _, err := registryCredentials("!!!"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("garbage header: %v", err)
	}
}

func TestParsePullPlatform(t *testing.T) {
	p, err := parsePlatform("linux/arm64/v8")
	if err != nil || p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "v8" {
		t.Errorf("parsePlatform: %+v, %v", p, err)
	}
	if p, err := parsePlatform(""); err != nil || p.OS != "linux" || p.Architecture == "" {
		t.Errorf("default platform: %+v, %v", p, err)
	}
	if _, err := parsePlatform("a/b/c/d"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("bad platform: %v", err)
	}
	if got := progressBar(50, 100); !strings.HasPrefix(got, "[=========================>") || !strings.HasSuffix(got, "50B/100B") {
		t.Errorf("progressBar: %q", got)
	}
}
