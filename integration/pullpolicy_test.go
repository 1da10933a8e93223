package integration

import (
	"context"
	"strings"
	"testing"

	regclient "berth/internal/registry/client"
)

// retag points ref's tag at the manifest from's tag names, in the same
// repository of a plain-HTTP registry.
func retag(t *testing.T, from, ref string) {
	t.Helper()
	c := regclient.New(regclient.Options{})
	ctx := context.Background()
	src, err := regclient.ParseReference(from)
	if err != nil {
		t.Fatal(err)
	}
	desc, raw, err := c.FetchManifest(ctx, src, strings.TrimPrefix(from, src.Name()+":"))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := regclient.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushManifest(ctx, dst, desc.MediaType, raw); err != nil {
		t.Fatal(err)
	}
}

// TestRunPullPolicy: `run`/`create --pull never|missing|always` with both
// CLIs. never fails on a missing image without asking the registry;
// missing pulls once and then keeps the local image even when the tag
// moved on the registry; always fetches the tag's new image.
func TestRunPullPolicy(t *testing.T) {
	e := daemonEnv(t)
	reg := startPlainRegistry(t, e)
	ref := reg.addr + "/pp/app:v1"
	other := reg.addr + "/pp/app:second"
	pushBusybox(t, ref)
	t.Cleanup(func() { e.berth(t, "rmi", "-f", ref) })

	r := e.berth(t, "create", "--pull", "never", ref)
	if r.code == 0 || !strings.Contains(r.stderr, "No such image: "+ref) {
		t.Errorf("create --pull never of a missing image: %s", r)
	}
	r = e.docker(t, "run", "--rm", "--pull=never", ref, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "No such image: "+ref) {
		t.Errorf("docker run --pull=never of a missing image: %s", r)
	}

	r = must(t, e.berth(t, "run", "--rm", "--pull", "missing", "--network", "none", ref, "cat", "/pulled"))
	if r.stdout != ref+"\n" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("run --pull missing: %s", r)
	}

	// The tag moves on the registry; the local image stays what it was
	// unless the pull is asked for.
	pushBusybox(t, other)
	retag(t, other, ref)
	r = must(t, e.berth(t, "run", "--rm", "--pull", "missing", "--network", "none", ref, "cat", "/pulled"))
	if r.stdout != ref+"\n" || strings.Contains(r.stderr, "Pulling") {
		t.Errorf("run --pull missing of a present image: %s", r)
	}
	r = must(t, e.docker(t, "run", "--rm", "--pull=never", "--network", "none", ref, "cat", "/pulled"))
	if r.stdout != ref+"\n" {
		t.Errorf("docker run --pull=never of a present image: %s", r)
	}
	r = must(t, e.docker(t, "run", "--rm", "--pull=always", "--network", "none", ref, "cat", "/pulled"))
	if r.stdout != other+"\n" {
		t.Errorf("docker run --pull=always did not fetch the moved tag: %s", r)
	}
	third := reg.addr + "/pp/app:third"
	pushBusybox(t, third)
	retag(t, third, ref)
	id := strings.TrimSpace(must(t, e.berth(t, "create", "--pull", "always", "--network", "none", ref, "cat", "/pulled")).stdout)
	t.Cleanup(func() { e.berth(t, "rm", "-f", id) })
	r = must(t, e.berth(t, "start", "-a", id))
	if r.stdout != third+"\n" {
		t.Errorf("create --pull always did not fetch the moved tag: %s", r)
	}
}
