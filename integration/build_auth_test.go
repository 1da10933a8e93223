package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildRegistryAuth: a FROM image on a registry with htpasswd users
// is pulled with the credentials the CLI sends in X-Registry-Config.
// Logged out, berth's and docker's builds fail naming the image and the
// refusal; logged in they pull it, with plain config.json entries and
// with a credential helper, with and without --pull.
func TestBuildRegistryAuth(t *testing.T) {
	e := daemonEnv(t)
	host := startBerthRegistry(t, e)
	docker := fileExists("/usr/local/bin/docker")
	for _, tc := range []struct{ name, config string }{
		{"auths", `{}`},
		{"helper", `{"credHelpers":{"` + host + `":"perhost"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &credEnv{e: e, config: t.TempDir(), bin: t.TempDir()}
			fakeCredentialHelper(t, c.bin, t.TempDir(), "perhost")
			if err := os.WriteFile(filepath.Join(c.config, "config.json"), []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			base := host + "/auth/" + uniq(t) + ":v1"
			t.Cleanup(func() { e.berth(t, "rmi", "-f", base) })
			login := func() { must(t, c.run(t, "p\n", e.bin, "login", "-u", "u", "--password-stdin", host)) }
			login()
			must(t, e.berth(t, "tag", "busybox", base))
			must(t, c.run(t, "", e.bin, "push", base))
			must(t, e.berth(t, "rmi", base))
			must(t, c.run(t, "", e.bin, "logout", host))

			ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo built-from-private\n"})
			clis := map[string]string{"berth": e.bin}
			if docker {
				clis["docker"] = dockerCLI(t)
			}
			for name, bin := range clis {
				r := c.run(t, "", bin, "build", "--no-cache", ctx)
				out := r.stdout + r.stderr
				if r.code == 0 || !strings.Contains(out, "pull access denied for "+base) || !strings.Contains(out, "'docker login' to "+host) {
					t.Errorf("%s build logged out: want a failure naming %s and login: %s", name, base, r)
				}
			}
			if imgs := must(t, e.berth(t, "images", "-q", base)).stdout; imgs != "" {
				t.Errorf("a failed build left the base: %q", imgs)
			}

			login()
			for name, bin := range clis {
				for _, pull := range []string{"", "--pull"} {
					args := []string{"build", "--no-cache", "--progress=plain", ctx}
					if name == "docker" {
						args = []string{"build", "--no-cache", ctx}
					}
					if pull != "" {
						args = append(args[:1], append([]string{pull}, args[1:]...)...)
					} else {
						e.berth(t, "rmi", "-f", base)
					}
					r := must(t, c.run(t, "", bin, args...))
					if !strings.Contains(r.stdout, "built-from-private") {
						t.Errorf("%s build %s logged in: %s", name, pull, r)
					}
				}
			}
		})
	}
}
