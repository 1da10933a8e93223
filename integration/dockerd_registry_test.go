package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"berth/internal/fixture"
)

// privateDockerd is a dockerd (Debian's docker.io, 20.10) of one test: its
// own data root, exec root, socket, pidfile, cgroup parent and bridge, and
// --iptables=false, so it never touches a host dockerd's state or firewall.
// It starts its own containerd under the exec root.
type privateDockerd struct {
	dir, sock, bridge, cgroupParent string
	logPath                         string
	cmd                             *exec.Cmd
	exited                          chan struct{}
}

// startPrivateDockerd starts a private dockerd and waits until it answers;
// t.Cleanup stops it and removes all it left, also when the test fails.
func startPrivateDockerd(t *testing.T, bin string) *privateDockerd {
	t.Helper()
	// A short path: the unix socket paths under it must stay below 108 bytes.
	dir, err := os.MkdirTemp("", "berth-dkd-")
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getpid() % 100000
	d := &privateDockerd{
		dir:          dir,
		sock:         filepath.Join(dir, "docker.sock"),
		bridge:       fmt.Sprintf("bdkd%d", id),
		cgroupParent: fmt.Sprintf("berth-it-dockerd-%d", id),
		logPath:      filepath.Join(dir, "dockerd.log"),
	}
	t.Cleanup(func() { d.stop(t) })
	// dockerd only attaches to a --bridge that exists. The subnet is
	// derived from the PID like the harness's (10.209.x.0/24 are the berth
	// daemons'), so concurrent `go test` runs do not collide.
	subnet := fmt.Sprintf("10.219.%d.1/24", id%250)
	for _, args := range [][]string{
		{"link", "add", d.bridge, "type", "bridge"},
		{"addr", "add", subnet, "dev", d.bridge},
		{"link", "set", d.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// An empty config file: the host's /etc/docker/daemon.json, if any,
	// must not apply.
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// No --insecure-registry: docker treats 127.0.0.0/8 as insecure by
	// default (it tries HTTPS, then falls back to plain HTTP), which is
	// what this test relies on for berth's loopback registry.
	d.cmd = exec.Command(bin,
		"--config-file", cfg,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.sock,
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge", d.bridge,
		"--iptables=false",
		"--ip-masq=false",
		"--cgroup-parent", d.cgroupParent,
		"--userland-proxy=false",
		"--group", "root")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	// dockerd takes 5-15 s to start on a busy machine (containerd first).
	start := time.Now()
	for {
		if r := d.docker(t, "", "version", "--format", "{{.Server.Version}}"); r.code == 0 {
			t.Logf("private dockerd %s up in %v", strings.TrimSpace(r.stdout), time.Since(start).Round(100*time.Millisecond))
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("dockerd exited at start; log:\n%s", d.logTail())
		default:
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("dockerd did not answer within 60 s; log:\n%s", d.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *privateDockerd) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// docker runs the docker CLI against the private dockerd, with a
// credentials store (DOCKER_CONFIG) of its own.
func (d *privateDockerd) docker(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI(t), append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "cli-config"))
	return runCmd(cmd, stdin)
}

// stop ends dockerd by its PID (SIGTERM, then SIGKILL after 20 s), then
// its containerd and shims if they outlived it, and removes its mounts,
// bridge, cgroups and directory.
func (d *privateDockerd) stop(t *testing.T) {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(20 * time.Second):
			t.Logf("dockerd %d ignored SIGTERM for 20 s; killing it", d.cmd.Process.Pid)
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("dockerd log (tail):\n%s", d.logTail())
		}
	}
	// A dockerd that stops cleanly stops its containerd; one that was
	// killed leaves it and its shims, which are ours by their command
	// lines (they name our directory), and the containers' processes,
	// which are ours by their cgroup (below our --cgroup-parent).
	killProcessesNaming(d.dir)
	cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.cgroupParent))
	for _, cg := range cgroups {
		killCgroupTree(cg)
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d.dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i].Mountpoint, syscall.MNT_DETACH)
	}
	exec.Command("ip", "link", "del", d.bridge).Run()
	for _, cg := range cgroups {
		removeCgroupTree(cg)
	}
	if mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d.dir)); len(mounts) == 0 {
		os.RemoveAll(d.dir)
	} else {
		t.Logf("left %s: %d mounts remain below it", d.dir, len(mounts))
	}
}

// killProcessesNaming SIGKILLs every process whose command line contains
// dir (a directory unique to one test), waiting briefly for them to go.
func killProcessesNaming(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var killed []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		alive := 0
		for _, pid := range killed {
			if syscall.Kill(pid, 0) == nil {
				alive++
			}
		}
		if alive == 0 {
			return
		}
	}
}

// killCgroupTree SIGKILLs the processes of a cgroup and its children and
// waits up to 5 s for them to leave it.
func killCgroupTree(dir string) {
	pids := func() []int {
		var out []int
		filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() || de.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					out = append(out, pid)
				}
			}
			return nil
		})
		return out
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left := pids()
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroupTree removes an (emptied) cgroup directory and its children,
// deepest first.
func removeCgroupTree(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		syscall.Rmdir(dirs[i])
	}
}

var pushDigestRe = regexp.MustCompile(`: digest: (sha256:[0-9a-f]{64}) size: \d+`)

// pushedDigest returns the manifest digest from docker push's last line.
func pushedDigest(t *testing.T, out string) string {
	t.Helper()
	m := pushDigestRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("push output has no digest line:\n%s", out)
	}
	return m[1]
}

// registryManifestDigest asks the registry which digest ref's tag names.
func registryManifestDigest(t *testing.T, host, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s/%s:%s: %s", host, repo, tag, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// TestDockerdWithBerthRegistry: an unmodified dockerd (20.10) against
// `berth registry serve` on loopback. dockerd pushes an image it loaded,
// pulls it back after rmi and runs it; it pulls and runs an image that
// berth's daemon pushed; and with htpasswd users (basic auth, and bearer
// tokens from berth's token endpoint) it needs `docker login` to push and
// pull. About 15-30 s, most of it dockerd's start-up, so
// it does not run with -short.
func TestDockerdWithBerthRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private dockerd (5-15 s): skipped with -short")
	}
	fixture.RequireRoot(t)
	dockerdBin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd not installed (apt-get install docker.io): nothing to check against")
	}
	dockerCLI(t)
	e := daemonEnv(t)
	d := startPrivateDockerd(t, dockerdBin)
	reg := freeAddr(t)
	runRegistry(t, reg, e.bin, "registry", "serve", "--addr", reg, "--root", t.TempDir(), "--log-level", "error")

	// dockerd loads the busybox fixture (as `go run ./scripts/mkfixtures`
	// writes it) and pushes it.
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := fixture.BusyboxImage(f, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	must(t, d.docker(t, "", "load", "-i", tarPath))
	id := strings.TrimSpace(must(t, d.docker(t, "", "image", "inspect", "-f", "{{.Id}}", "busybox:latest")).stdout)
	repo := "dockerd/busybox"
	ref := reg + "/" + repo + ":v1"
	must(t, d.docker(t, "", "tag", "busybox:latest", ref))
	r := must(t, d.docker(t, "", "push", ref))
	wantAll(t, "dockerd push", r.stdout, "The push refers to repository ["+reg+"/"+repo+"]\n", ": Pushed\n")
	dgst := pushedDigest(t, r.stdout)
	if got := registryManifestDigest(t, reg, repo, "v1"); got != dgst {
		t.Errorf("berth's registry names %s for v1, dockerd pushed %s", got, dgst)
	}
	r = must(t, d.docker(t, "", "push", ref))
	wantAll(t, "second dockerd push", r.stdout, ": Layer already exists\n", dgst)

	// rmi both names, so the pull must fetch everything.
	must(t, d.docker(t, "", "rmi", ref, "busybox:latest"))
	if r := d.docker(t, "", "image", "inspect", id); r.code == 0 {
		t.Fatalf("image %s still present after rmi", id)
	}
	r = must(t, d.docker(t, "", "pull", ref))
	wantAll(t, "dockerd pull", r.stdout, "Digest: "+dgst+"\n", "Status: Downloaded newer image for "+ref+"\n")
	var inspected []struct {
		ID          string `json:"Id"`
		RepoDigests []string
	}
	if err := json.Unmarshal([]byte(must(t, d.docker(t, "", "image", "inspect", ref)).stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("image inspect %s: %v", ref, err)
	}
	if inspected[0].ID != id {
		t.Errorf("pulled image ID %s, pushed %s", inspected[0].ID, id)
	}
	if want := reg + "/" + repo + "@" + dgst; len(inspected[0].RepoDigests) != 1 || inspected[0].RepoDigests[0] != want {
		t.Errorf("RepoDigests %v, want [%s]", inspected[0].RepoDigests, want)
	}
	r = must(t, d.docker(t, "", "run", "--rm", "--network", "none", ref, "echo", "from-berth-registry"))
	if r.stdout != "from-berth-registry\n" {
		t.Errorf("dockerd run of the pulled image: %s", r)
	}

	// berth's daemon pushes, dockerd pulls and runs.
	bref := reg + "/berth/hello:v1"
	must(t, e.berth(t, "tag", "hello", bref))
	t.Cleanup(func() { e.berth(t, "rmi", bref) })
	r = must(t, e.berth(t, "push", bref))
	bdgst := pushedDigest(t, r.stdout)
	hid := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", "hello")).stdout)
	r = must(t, d.docker(t, "", "pull", bref))
	wantAll(t, "dockerd pull of berth's push", r.stdout, "Digest: "+bdgst+"\n", "Status: Downloaded newer image for "+bref+"\n")
	if got := strings.TrimSpace(must(t, d.docker(t, "", "image", "inspect", "-f", "{{.Id}}", bref)).stdout); got != hid {
		t.Errorf("dockerd pulled image ID %s, berth pushed %s", got, hid)
	}
	r = must(t, d.docker(t, "", "run", "--rm", "--network", "none", bref, "/hello", "via", "dockerd"))
	wantAll(t, "dockerd run of berth's image", r.stdout, "Hello from berth!\n", "You said: via dockerd\n")

	// With htpasswd users, basic auth and bearer tokens from berth's token
	// endpoint: nothing without `docker login`.
	basicReg := freeAddr(t)
	runRegistry(t, basicReg, e.bin, "registry", "serve", "--addr", basicReg, "--root", t.TempDir(), "--htpasswd", htpasswdFile(t), "--log-level", "error")
	for _, c := range []struct{ name, host, denied, badLogin string }{
		{"basic", basicReg, "no basic auth credentials", "401 Unauthorized"},
		// An anonymous token carries no access: the registry denies it.
		{"token", startBerthRegistry(t, e), "denied: requested access to repository auth/busybox", "unauthorized: invalid username or password"},
	} {
		aref := c.host + "/auth/busybox:v1"
		must(t, d.docker(t, "", "tag", ref, aref))
		r = d.docker(t, "", "push", aref)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, c.denied) {
			t.Errorf("%s: dockerd push before login: %s", c.name, r)
		}
		r = d.docker(t, "wrong\n", "login", "-u", "u", "--password-stdin", c.host)
		if r.code != 1 || !strings.Contains(r.stderr, c.badLogin) {
			t.Errorf("%s: docker login with a wrong password: %s", c.name, r)
		}
		r = must(t, d.docker(t, "p\n", "login", "-u", "u", "--password-stdin", c.host))
		wantAll(t, c.name+": docker login", r.stdout, "Login Succeeded")
		r = must(t, d.docker(t, "", "push", aref))
		if got := pushedDigest(t, r.stdout); got != dgst {
			t.Errorf("%s: push digest %s, the same image pushed before was %s", c.name, got, dgst)
		}
		must(t, d.docker(t, "", "rmi", aref))
		must(t, d.docker(t, "", "logout", c.host))
		r = d.docker(t, "", "pull", aref)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, c.denied) {
			t.Errorf("%s: dockerd pull after logout: %s", c.name, r)
		}
		must(t, d.docker(t, "p\n", "login", "-u", "u", "--password-stdin", c.host))
		r = must(t, d.docker(t, "", "pull", aref))
		wantAll(t, c.name+": dockerd pull", r.stdout, "Digest: "+dgst+"\n")
	}
}
