package daemon

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"

	"berth/internal/errdefs"
)

func TestDecodeBuildAuth(t *testing.T) {
	m := map[string]registry.AuthConfig{
		"127.0.0.1:5000":              {Username: "u", Password: "p"},
		"https://index.docker.io/v1/": {Username: "hub", Password: "h"},
		"http://other.example:5001":   {IdentityToken: "tok"},
		"empty.example":               {ServerAddress: "empty.example"},
	}
	raw, _ := json.Marshal(m)
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawURLEncoding} {
		a, err := decodeBuildAuth(enc.EncodeToString(raw))
		if err != nil {
			t.Fatal(err)
		}
		for ref, want := range map[string]string{
			"127.0.0.1:5000/x/y:v1":    "u",
			"busybox":                  "hub",
			"docker.io/library/alpine": "hub",
			"other.example:5001/z":     "tok",
			"empty.example/a":          "",
			"127.0.0.1:5001/x":         "",
		} {
			h := a.header(ref)
			got := ""
			if h != "" {
				c, err := registryCredentials(h)
				if err != nil {
					t.Fatalf("%s: %v", ref, err)
				}
				got = c.Username + c.IdentityToken
			}
			if got != want {
				t.Errorf("credentials for %s: %q, want %q", ref, got, want)
			}
		}
	}
	if a, err := decodeBuildAuth("e30="); err != nil || len(a) != 0 || a.header("busybox") != "" {
		t.Errorf("e30=: %v %v", a, err)
	}
	if _, err := decodeBuildAuth("!!"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("bad header: %v", err)
	}
}

func TestBuildAuthDenied(t *testing.T) {
	a := buildAuth{"127.0.0.1:5000": {Username: "u", Password: "p"}}
	refused := unclassified{errdefs.Forbidden(errors.New("denied: requested access"))}
	if err := a.denied("127.0.0.1:5000/x:v1", refused); err == nil || !strings.Contains(err.Error(), "credentials sent for 127.0.0.1:5000 were refused") {
		t.Errorf("with credentials: %v", err)
	}
	if err := a.denied("127.0.0.1:5001/x:v1", refused); err == nil || !strings.Contains(err.Error(), "may require 'docker login' to 127.0.0.1:5001") {
		t.Errorf("without credentials: %v", err)
	}
	if err := a.denied("127.0.0.1:5000/x:v1", unclassified{errors.New("connection refused")}); err != nil {
		t.Errorf("an unreachable registry is not a denial: %v", err)
	}
}
