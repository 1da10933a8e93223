package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// TestConfigFileAuths stores, reads, encodes and erases credentials in
// config.json's "auths", keeping fields berth does not know.
func TestConfigFileAuths(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"psFormat":"table {{.ID}}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, err := loadConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := cf.store(registry.AuthConfig{ServerAddress: "127.0.0.1:5000", Username: "u", Password: "p:w"}); err != nil || !plain {
		t.Fatalf("store: %v %v", plain, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var raw struct {
		PsFormat string `json:"psFormat"`
		Auths    map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.PsFormat != "table {{.ID}}" ||
		raw.Auths["127.0.0.1:5000"].Auth != base64.StdEncoding.EncodeToString([]byte("u:p:w")) {
		t.Fatalf("config.json: %s (%v)", b, err)
	}

	hdr := registryAuthFor("127.0.0.1:5000/a/b:c")
	dec, err := base64.URLEncoding.DecodeString(hdr)
	var ac registry.AuthConfig
	if err != nil || json.Unmarshal(dec, &ac) != nil || ac.Username != "u" || ac.Password != "p:w" {
		t.Errorf("X-Registry-Auth %q decodes to %+v (%v)", hdr, ac, err)
	}
	if got := registryAuthFor("other.example:5000/x"); got != "e30=" {
		t.Errorf("X-Registry-Auth for an unknown registry: %q", got)
	}

	cf, _ = loadConfigFile()
	if had, err := cf.erase("127.0.0.1:5000"); !had || err != nil {
		t.Errorf("erase: %v %v", had, err)
	}
	if had, _ := cf.erase("127.0.0.1:5000"); had {
		t.Error("second erase found credentials")
	}
	if got := registryAuthFor("127.0.0.1:5000/a/b:c"); got != "e30=" {
		t.Errorf("X-Registry-Auth after erase: %q", got)
	}
}

// TestConfigFileHelper goes through a credential helper named by
// credsStore (a shell script keeping the secret in a file).
func TestConfigFileHelper(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	store := filepath.Join(dir, "secret")
	script := `#!/bin/sh
case "$1" in
store) cat > ` + store + ` ;;
get) read server; if [ -f ` + store + ` ]; then cat ` + store + `; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f ` + store + ` ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-fake"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"fake"}`), 0o600)

	cf, err := loadConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := cf.get("reg:1"); err != nil || ac.Username != "" {
		t.Fatalf("get before store: %+v %v", ac, err)
	}
	if plain, err := cf.store(registry.AuthConfig{ServerAddress: "reg:1", Username: "u", Password: "s3cret"}); err != nil || plain {
		t.Fatalf("store: %v %v", plain, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); strings.Contains(string(b), "s3cret") {
		t.Errorf("the secret reached config.json: %s", b)
	}
	if ac, err := cf.get("reg:1"); err != nil || ac.Username != "u" || ac.Password != "s3cret" {
		t.Errorf("get: %+v %v", ac, err)
	}
	if had, err := cf.erase("reg:1"); !had || err != nil {
		t.Errorf("erase: %v %v", had, err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("helper still holds the secret: %v", err)
	}
}

func TestServerKey(t *testing.T) {
	for in, want := range map[string]string{"": hubServer, "docker.io": hubServer, "https://index.docker.io/v1/": hubServer,
		"127.0.0.1:5000": "127.0.0.1:5000", "http://reg.example:5000/v2/": "reg.example:5000"} {
		if got := serverKey(in); got != want {
			t.Errorf("serverKey(%q) = %q, want %q", in, got, want)
		}
	}
}
