package integration

import (
	"strings"
	"testing"
)

// TestBuildPull: a FROM image the store lacks is pulled, as docker's
// classic builder does; --pull pulls it again even when the store has
// it, so a newer push under the same tag becomes the base. The registry
// is a loopback berth registry.
func TestBuildPull(t *testing.T) {
	e := daemonEnv(t)
	reg := startPlainRegistry(t, e)
	base := reg.addr + "/pull/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", base) })
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /base-version || echo none\n"})

	// v1: busybox with /base-version "one", pushed, then removed here.
	one := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo one > /base-version\n"})
	must(t, e.berth(t, "build", "-q", "-t", base, one))
	must(t, e.berth(t, "push", base))
	must(t, e.berth(t, "rmi", base))
	r := must(t, e.berth(t, "build", "--progress=plain", "--no-cache", dir))
	if !strings.Contains(r.stdout, "\none\n") {
		t.Fatalf("build from a base not in the store did not pull it:\n%s", r.stdout)
	}

	// v2 pushed under the same tag from elsewhere: the local v1 stays the
	// base without --pull, v2 is the base with it.
	two := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo two > /base-version\n"})
	v1 := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", base)).stdout)
	must(t, e.berth(t, "build", "-q", "-t", base, two))
	must(t, e.berth(t, "push", base))
	must(t, e.berth(t, "tag", v1, base))
	r = must(t, e.berth(t, "build", "--progress=plain", "--no-cache", dir))
	if !strings.Contains(r.stdout, "\none\n") {
		t.Fatalf("without --pull the local base was not used:\n%s", r.stdout)
	}
	r = must(t, e.berth(t, "build", "--progress=plain", "--no-cache", "--pull", dir))
	if !strings.Contains(r.stdout, "\ntwo\n") {
		t.Fatalf("--pull did not pull the newer base:\n%s", r.stdout)
	}
	r = must(t, e.docker(t, "build", "--no-cache", "--pull", dir))
	if !strings.Contains(r.stdout, "\ntwo\n") {
		t.Fatalf("docker build --pull did not use the newer base:\n%s", r.stdout)
	}
}
