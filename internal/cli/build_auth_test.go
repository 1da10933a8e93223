package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBuildAuthConfigs: every registry config.json knows of is sent,
// from "auths", from a credHelpers helper and from the credsStore's
// list; registries without a secret are left out.
func TestBuildAuthConfigs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A helper answering get for one server and listing it.
	helper := func(name, server, user string) {
		script := "#!/bin/sh\nread line\ncase \"$1\" in\n" +
			"get) if [ \"$line\" = \"" + server + "\" ]; then echo '{\"ServerURL\":\"" + server + "\",\"Username\":\"" + user + "\",\"Secret\":\"s\"}'; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n" +
			"list) echo '{\"" + server + "\":\"" + user + "\"}' ;;\nesac\n"
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	helper("perhost", "helper.example:5000", "hu")
	helper("store", "stored.example", "su")
	cfg := `{"auths":{"plain.example":{"auth":"cHU6cHA="},"nothing.example":{}},
		"credHelpers":{"helper.example:5000":"perhost","missing.example":"perhost"},"credsStore":"store"}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	got := buildAuthConfigs()
	want := map[string]string{"helper.example:5000": "hu", "stored.example": "su"}
	// plain.example is in "auths" but credsStore takes over every
	// registry without its own helper, as in docker: the store has none.
	for server, user := range want {
		if ac, ok := got[server]; !ok || ac.Username != user || ac.Password != "s" || ac.ServerAddress != server {
			t.Errorf("%s: %+v, want user %s", server, ac, user)
		}
	}
	if len(got) != len(want) {
		t.Errorf("sent %d registries, want %d: %v", len(got), len(want), got)
	}

	// Without a store, "auths" entries are read from the file.
	cfg = `{"auths":{"plain.example":{"auth":"cHU6cHA="},"nothing.example":{}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got = buildAuthConfigs()
	if ac := got["plain.example"]; len(got) != 1 || ac.Username != "pu" || ac.Password != "pp" {
		t.Errorf("auths only: %v", got)
	}
}
