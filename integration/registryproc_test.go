package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// registryProc is a registry process the test can stop.
type registryProc struct {
	addr string
	cmd  *exec.Cmd
}

// startRegistryProc runs name with args as a registry listening on addr and
// waits up to 10 s until ready says it answers. At cleanup it kills the
// process and, if the test failed, logs its output under label.
func startRegistryProc(t *testing.T, label, addr string, ready func() error, name string, args ...string) *registryProc {
	t.Helper()
	p := &registryProc{addr: addr, cmd: exec.Command(name, args...)}
	var logs bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &logs, &logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s %s log:\n%s", label, addr, logs.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := ready()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s did not start: %v\n%s", label, addr, err, logs.String())
		}
	}
}

func (p *registryProc) stop() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// answers is a readiness probe: a GET of url through c gets a response,
// with one of codes when any are given.
func answers(c *http.Client, url string, codes ...int) func() error {
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if len(codes) > 0 && !slices.Contains(codes, resp.StatusCode) {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// runRegistry starts a registry process and waits until /v2/ answers
// (401 with authentication).
func runRegistry(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	startRegistryProc(t, "registry", addr, answers(http.DefaultClient, "http://"+addr+"/v2/", http.StatusOK, http.StatusUnauthorized), name, args...)
}

// runDistribution runs Debian's distribution registry (docker-registry 2.8)
// on a free loopback port with a temp storage root, with htpasswd basic
// auth when auth is set; it returns host:port.
func runDistribution(t *testing.T, auth bool) string {
	t.Helper()
	const bin = "/usr/bin/docker-registry"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not installed (apt-get install docker-registry)", bin)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if auth {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", htpasswdFile(t))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runRegistry(t, addr, bin, "serve", filepath.Join(dir, "config.yml"))
	return addr
}
