package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// credEnv runs CLIs with a docker config directory and a PATH of their own,
// so that a credential helper script the test wrote is the one found.
type credEnv struct {
	e      *env
	config string // DOCKER_CONFIG
	bin    string // prepended to PATH
}

func (c *credEnv) run(t *testing.T, stdin, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+c.bin+":"+os.Getenv("PATH"), "DOCKER_CONFIG="+c.config,
		"BERTH_HOST=unix://"+c.e.sock, "DOCKER_HOST=unix://"+c.e.sock)
	return runCmd(cmd, stdin)
}

// fakeCredentialHelper writes docker-credential-NAME into bin: a helper
// speaking the docker-credential protocol that keeps one secret per
// server in dir/NAME-<sanitised server> and logs its verbs to dir/NAME.log.
func fakeCredentialHelper(t *testing.T, bin, dir, name string) {
	t.Helper()
	script := `#!/bin/sh
read line
echo "$1" >> ` + dir + `/` + name + `.log
key=$(printf '%s' "$line" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/; s/[^A-Za-z0-9]/_/g')
case "$1" in
store) printf '%s' "$line" > ` + dir + `/` + name + `-$key ;;
get) f=` + dir + `/` + name + `-$(printf '%s' "$line" | sed 's/[^A-Za-z0-9]/_/g')
     if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f ` + dir + `/` + name + `-$(printf '%s' "$line" | sed 's/[^A-Za-z0-9]/_/g') ;;
list) echo '{}' ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialHelpers: with credHelpers naming a helper for the
// registry, `berth login` hands the password to the helper (config.json
// never holds it); berth's and docker's push find it through the helper;
// `berth logout` erases it and the next push is refused. A credsStore
// for every other registry is left alone.
func TestCredentialHelpers(t *testing.T) {
	e := daemonEnv(t)
	host := startBerthRegistry(t, e)
	ref := host + "/ch/hello:v1"
	dir := t.TempDir()
	c := &credEnv{e: e, config: filepath.Join(dir, "config"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{c.config, c.bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fakeCredentialHelper(t, c.bin, dir, "perhost")
	fakeCredentialHelper(t, c.bin, dir, "store")
	cfg := `{"credsStore":"store","credHelpers":{"` + host + `":"perhost"}}`
	if err := os.WriteFile(filepath.Join(c.config, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, e.berth(t, "tag", "hello", ref))
	t.Cleanup(func() { e.berth(t, "rmi", ref) })

	r := must(t, c.run(t, "p\n", e.bin, "login", "-u", "u", "--password-stdin", host))
	wantAll(t, "login", r.stdout, "Login Succeeded")
	b, _ := os.ReadFile(filepath.Join(c.config, "config.json"))
	if strings.Contains(string(b), `"auth"`) || strings.Contains(string(b), "cA==") {
		t.Errorf("config.json holds the secret: %s", b)
	}
	stored, _ := filepath.Glob(filepath.Join(dir, "perhost-*"))
	if len(stored) != 1 {
		t.Fatalf("the per-registry helper stored %d secrets: %v", len(stored), stored)
	}
	if s, _ := os.ReadFile(stored[0]); !strings.Contains(string(s), `"Secret":"p"`) || !strings.Contains(string(s), `"Username":"u"`) {
		t.Errorf("helper got %s", s)
	}
	if other, _ := filepath.Glob(filepath.Join(dir, "store-*")); len(other) != 0 {
		t.Errorf("the credsStore helper got this registry's secret: %v", other)
	}

	r = must(t, c.run(t, "", e.bin, "push", ref))
	wantAll(t, "berth push with the helper's credentials", r.stdout, "v1: digest: sha256:")
	if fileExists("/usr/local/bin/docker") {
		r = must(t, c.run(t, "", dockerCLI(t), "push", ref))
		wantAll(t, "docker push with the helper's credentials", r.stdout, "v1: digest: sha256:")
	}

	r = must(t, c.run(t, "", e.bin, "logout", host))
	wantAll(t, "logout", r.stdout, "Removing login credentials for "+host)
	if left, _ := filepath.Glob(filepath.Join(dir, "perhost-*")); len(left) != 0 {
		t.Errorf("logout left the helper's secret: %v", left)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "perhost.log"))
	if !strings.Contains(string(log), "store\n") || !strings.Contains(string(log), "get\n") || !strings.Contains(string(log), "erase\n") {
		t.Errorf("helper verbs: %q", log)
	}
	r = c.run(t, "", e.bin, "push", ref)
	if r.code == 0 {
		t.Errorf("push after logout succeeded: %s", r)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
