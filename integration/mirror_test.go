package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPlainRegistry runs berth's registry without authentication.
func startPlainRegistry(t *testing.T, e *env) *registryProc {
	t.Helper()
	addr := freeAddr(t)
	return startRegistryProc(t, "registry", addr, answers(http.DefaultClient, "http://"+addr+"/v2/", http.StatusOK),
		e.bin, "registry", "serve", "--addr", addr, "--root", t.TempDir(), "--log-level", "error")
}

// catalog lists the registry's repositories.
func (p *registryProc) catalog(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Repositories []string }
	json.NewDecoder(resp.Body).Decode(&body)
	return body.Repositories
}

// startConfiguredDaemon runs a second, private daemon (no images) with
// daemon.json cfg, on its own data root, exec root and bridge.
func startConfiguredDaemon(t *testing.T, shared *env, cfg map[string]any) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-it2-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{bin: shared.bin, dir: dir, dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"),
		sock: filepath.Join(dir, "berth.sock"), logPath: filepath.Join(dir, "daemon.log")}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			b, _ := os.ReadFile(e.logPath)
			t.Logf("second daemon log:\n%s", b)
		}
		e.cleanup()
	})
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	bridge, subnet := testBridge(dir)
	e.daemon = exec.Command(e.bin, "daemon", "-H", "unix://"+e.sock, "--data-root", e.dataRoot, "--exec-root", e.execRoot,
		"--bridge-name", bridge, "--bridge-subnet", subnet, "--config-file", conf)
	e.daemon.Stdout, e.daemon.Stderr = logf, logf
	if err := e.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	e.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(e.daemon)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(e.logPath)
			t.Fatalf("second daemon exited at start:\n%s", b)
		default:
		}
		if _, err := os.Stat(e.sock); err == nil && e.run(t.Context(), "", e.bin, "version").code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second daemon did not answer")
		}
	}
	return e
}

// TestRegistryMirror: a daemon configured with a mirror for a registry
// (registry-mirrors-by-host) pulls what the mirror has from the mirror,
// even with the registry down, falls back to the registry for what the
// mirror lacks, and never pushes to the mirror.
func TestRegistryMirror(t *testing.T) {
	e := daemonEnv(t)
	origin, mirror := startPlainRegistry(t, e), startPlainRegistry(t, e)
	onlyOrigin := origin.addr + "/mir/busybox:v1"
	mirrored := origin.addr + "/mir/hello:v1"
	t.Cleanup(func() {
		e.berth(t, "rmi", onlyOrigin, mirrored, mirror.addr+"/mir/hello:v1")
	})
	must(t, e.berth(t, "tag", "busybox", onlyOrigin))
	must(t, e.berth(t, "push", onlyOrigin))
	// The mirror holds hello under the same repository name, as a
	// pull-through cache would.
	must(t, e.berth(t, "tag", "hello", mirrored))
	must(t, e.berth(t, "push", mirrored))
	must(t, e.berth(t, "tag", "hello", mirror.addr+"/mir/hello:v1"))
	must(t, e.berth(t, "push", mirror.addr+"/mir/hello:v1"))

	m := startConfiguredDaemon(t, e, map[string]any{
		"registry-mirrors-by-host": map[string][]string{origin.addr: {"http://" + mirror.addr}},
	})

	// Not on the mirror: the origin serves it.
	r := must(t, m.berth(t, "pull", onlyOrigin))
	wantAll(t, "pull through the fallback", r.stdout, "Status: Downloaded newer image for "+onlyOrigin+"\n")
	r = must(t, m.berth(t, "run", "--rm", "--network", "none", onlyOrigin, "echo", "via-origin"))
	if r.stdout != "via-origin\n" {
		t.Errorf("run of the image pulled from the origin: %s", r)
	}

	// On the mirror: served from it, with the origin stopped.
	origin.stop()
	r = must(t, m.berth(t, "pull", mirrored))
	wantAll(t, "pull from the mirror", r.stdout, "Status: Downloaded newer image for "+mirrored+"\n")
	want := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", "hello")).stdout)
	if got := strings.TrimSpace(must(t, m.berth(t, "image", "inspect", "-f", "{{.Id}}", mirrored)).stdout); got != want {
		t.Errorf("image from the mirror is %s, want hello's %s", got, want)
	}

	// What neither has fails, naming the origin (the last endpoint tried).
	r = m.berth(t, "pull", origin.addr+"/mir/none:v1")
	if r.code == 0 || !strings.Contains(r.stderr, origin.addr) {
		t.Errorf("pull of an image nowhere: %s", r)
	}

	// A push goes to the origin only (down): it fails, the mirror is untouched.
	before := mirror.catalog(t)
	must(t, m.berth(t, "tag", mirrored, origin.addr+"/mir/pushed:v1"))
	if r := m.berth(t, "push", origin.addr+"/mir/pushed:v1"); r.code == 0 {
		t.Errorf("push with the origin down succeeded: %s", r)
	}
	if after := mirror.catalog(t); len(after) != len(before) {
		t.Errorf("the mirror's catalog changed with a push: %q -> %q", before, after)
	}
}
