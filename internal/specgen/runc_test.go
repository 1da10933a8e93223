package specgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/internal/fixture"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// runInRunc runs a built spec with runc, the reference runtime, and returns
// the container's output. The spec is the seam between berth's daemon and
// any OCI runtime, so runc accepting it and producing Docker's results is
// the strongest check of Build.
func runInRunc(t *testing.T, in Input, script string) string {
	t.Helper()
	fixture.RequireRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed (the reference runtime)")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"hostname": "runcbox\n", "hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 127.0.0.1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.HostnamePath = filepath.Join(dir, "hostname")
	in.HostsPath = filepath.Join(dir, "hosts")
	in.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	in.Config.Cmd = []string{"sh", "-c", script}
	// A parent of our own, removed afterwards, so the test leaves no cgroup.
	in.CgroupParent = "/berth-specgen-test"
	t.Cleanup(func() {
		matches, _ := filepath.Glob("/sys/fs/cgroup/*/berth-specgen-test")
		for _, m := range matches {
			os.Remove(m)
		}
	})

	s, err := Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	id := in.ID[:20]
	t.Cleanup(func() { exec.Command(runc, "--root", state, "delete", "--force", id).Run() })
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("runc run timed out")
	}
	if err != nil {
		t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestRuncRunsDefaultSpec(t *testing.T) {
	in := Input{
		ID:         testID,
		Config:     &container.Config{Env: []string{"FOO=bar"}},
		HostConfig: &container.HostConfig{},
		Image:      &ocispec.ImageConfig{Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
		Rootfs:     busyboxRoot(t),
	}
	in.HostConfig.Memory = 64 << 20
	in.HostConfig.PidsLimit = p64(50)
	out := runInRunc(t, in, `
		echo "id=$(id)"
		echo "host=$(hostname)"
		echo "env=$FOO:$HOME:$HOSTNAME"
		grep CapBnd /proc/self/status
		grep Seccomp: /proc/self/status
		echo "timer_list=$(wc -c < /proc/timer_list)"
		echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo sysrw || echo sysro
		grep ' /dev/shm ' /proc/mounts
		ls /sys/fs/cgroup/pids >/dev/null && echo cgroupfs
		ip link 2>/dev/null | grep -c '^[0-9]' | sed 's/^/links=/'
	`)
	want := []string{
		"id=uid=0(root) gid=0(root) groups=0(root),10(wheel)",
		"host=0123456789ab",
		"env=bar:/root:0123456789ab",
		"CapBnd:\t00000000a80425fb", // Docker's default 14 capabilities
		"Seccomp:\t2",               // filter mode
		"timer_list=0",              // masked (the host has one)
		"sysro",                     // /proc/sys read-only
		"size=65536k",               // 64 MiB /dev/shm
		"cgroupfs",
		"links=1", // a new network namespace with only lo
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("container output lacks %q:\n%s", w, out)
		}
	}
}

func TestRuncRunsUserAndReadonly(t *testing.T) {
	in := Input{
		ID:         testID,
		Config:     &container.Config{User: "www-data", WorkingDir: "/var/www"},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, Tmpfs: map[string]string{"/tmp": "size=1m"}, CapDrop: []string{"ALL"}},
		Rootfs:     busyboxRoot(t),
	}
	out := runInRunc(t, in, `
		echo "id=$(id -u):$(id -g) pwd=$(pwd)"
		touch /rootfile 2>/dev/null && echo rootrw || echo rootro
		touch /tmp/f && echo tmprw
		grep CapBnd /proc/self/status
	`)
	for _, w := range []string{"id=33:33 pwd=/var/www", "rootro", "tmprw", "CapBnd:\t0000000000000000"} {
		if !strings.Contains(out, w) {
			t.Errorf("container output lacks %q:\n%s", w, out)
		}
	}
}

// Privileged containers get every capability this daemon holds and no filter.
func TestRuncRunsPrivileged(t *testing.T) {
	in := Input{
		ID:         testID,
		Config:     &container.Config{},
		HostConfig: &container.HostConfig{Privileged: true},
		Rootfs:     busyboxRoot(t),
	}
	out := runInRunc(t, in, `grep -E 'CapBnd|Seccomp:' /proc/self/status; ls /dev/null >/dev/null && echo dev`)
	_, bounding := hostCaps()
	if !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "dev") {
		t.Errorf("privileged output:\n%s", out)
	}
	if want := fmt.Sprintf("CapBnd:\t%016x", bounding); !strings.Contains(out, want) {
		t.Errorf("privileged bounding set is not the daemon's (%s):\n%s", want, out)
	}
}
