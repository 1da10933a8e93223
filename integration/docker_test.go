package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These scenarios run the unmodified docker CLI (28.2.2) against berth and
// assert outputs and exit codes.

func TestDockerRunOutputAndExitCode(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "busybox", "echo", "hello from busybox"))
	if r.stdout != "hello from busybox\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
	r = e.docker(t, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("want exit 3 with split streams, got %s", r)
	}
	r = must(t, e.docker(t, "run", "--rm", "hello"))
	if !strings.Contains(r.stdout, "Hello from berth!") {
		t.Fatalf("hello image printed %q", r.stdout)
	}
}

func TestDockerRunIsolation(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "-h", "boxhost", "busybox", "sh", "-c", "echo $$; hostname; ps -o pid | wc -l; cat /proc/self/status | grep CapEff"))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || lines[0] != "1" || lines[1] != "boxhost" {
		t.Fatalf("pid 1 and hostname expected, got %q", r.stdout)
	}
	if !strings.Contains(lines[3], "00000000a80425fb") {
		t.Fatalf("docker's default capability set expected, got %q", lines[3])
	}
	r = e.docker(t, "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/mnt")
	if r.code == 0 {
		t.Fatalf("mount inside a default container must fail: %s", r)
	}
}

func TestDockerRunStdinPipe(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.dockerIn(t, "line1\nline2\n", "run", "-i", "--rm", "busybox", "cat"))
	if r.stdout != "line1\nline2\n" {
		t.Fatalf("cat echoed %q", r.stdout)
	}
}

func TestDockerRunEnvWorkdirUser(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "-e", "FOO=bar", "-w", "/srv/app", "-u", "www-data", "busybox", "sh", "-c", "echo $FOO; pwd; id -u; id -g"))
	if r.stdout != "bar\n/srv/app\n33\n33\n" {
		t.Fatalf("env/workdir/user: %q", r.stdout)
	}
}

func TestDockerRunMissingImage(t *testing.T) {
	e := daemonEnv(t)
	r := e.docker(t, "run", "--rm", "nonexistent-image-xyz")
	if r.code != 125 || !strings.Contains(r.stderr, "Unable to find image 'nonexistent-image-xyz:latest' locally") {
		t.Fatalf("want exit 125 and the pull attempt, got %s", r)
	}
}

func TestDockerRunCommandNotFound(t *testing.T) {
	e := daemonEnv(t)
	r := e.docker(t, "run", "--rm", "busybox", "/no/such/binary")
	if r.code != 127 {
		t.Fatalf("want exit 127, got %s", r)
	}
}

func TestDockerDetachedLifecycle(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	r := must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; exec sleep 300"))
	id := strings.TrimSpace(r.stdout)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex id", r.stdout)
	}
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })

	ps := must(t, e.docker(t, "ps", "--format", "{{.Names}} {{.Status}}", "--filter", "name="+name))
	if !strings.HasPrefix(ps.stdout, name+" Up ") {
		t.Fatalf("ps: %q", ps.stdout)
	}
	insp := must(t, e.docker(t, "inspect", "-f", "{{.State.Running}} {{.State.Pid}} {{.Name}}", name))
	if !strings.HasPrefix(insp.stdout, "true ") || !strings.HasSuffix(strings.TrimSpace(insp.stdout), "/"+name) {
		t.Fatalf("inspect: %q", insp.stdout)
	}
	waitFor(t, func() bool { return e.docker(t, "logs", name).stdout == "started\n" })

	ex := must(t, e.docker(t, "exec", name, "sh", "-c", "echo in-exec; exit 0"))
	if ex.stdout != "in-exec\n" {
		t.Fatalf("exec: %q", ex.stdout)
	}
	if ex := e.docker(t, "exec", name, "sh", "-c", "exit 7"); ex.code != 7 {
		t.Fatalf("exec exit code: %s", ex)
	}
	top := must(t, e.docker(t, "top", name))
	if !strings.Contains(top.stdout, "sleep 300") {
		t.Fatalf("top: %q", top.stdout)
	}
	if r := e.docker(t, "rm", name); r.code == 0 || !strings.Contains(r.stderr, "container is running: stop the container before removing") {
		t.Fatalf("rm of a running container must fail: %s", r)
	}
	must(t, e.docker(t, "pause", name))
	if s := must(t, e.docker(t, "inspect", "-f", "{{.State.Status}}", name)).stdout; s != "paused\n" {
		t.Fatalf("after pause: %q", s)
	}
	must(t, e.docker(t, "unpause", name))

	start := time.Now()
	if r := must(t, e.docker(t, "stop", "-t", "1", name)); strings.TrimSpace(r.stdout) != name {
		t.Fatalf("stop printed %q", r.stdout)
	}
	if time.Since(start) > 8*time.Second {
		t.Fatalf("stop -t 1 took %v", time.Since(start))
	}
	st := must(t, e.docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)).stdout
	if st != "exited 137\n" && st != "exited 143\n" {
		t.Fatalf("after stop: %q", st)
	}
	// stop of a stopped container is a 304: success, name printed
	must(t, e.docker(t, "stop", name))
	must(t, e.docker(t, "start", name))
	if s := must(t, e.docker(t, "inspect", "-f", "{{.State.Running}}", name)).stdout; s != "true\n" {
		t.Fatalf("after start: %q", s)
	}
	must(t, e.docker(t, "restart", "-t", "1", name))
	must(t, e.docker(t, "kill", name))
	w := must(t, e.docker(t, "wait", name))
	if w.stdout != "137\n" {
		t.Fatalf("wait: %q", w.stdout)
	}
	if r := e.docker(t, "kill", name); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Fatalf("kill of a stopped container: %s", r)
	}
	must(t, e.docker(t, "rename", name, name+"-renamed"))
	must(t, e.docker(t, "rm", name+"-renamed"))
	if r := e.docker(t, "inspect", name+"-renamed"); r.code != 1 || !strings.Contains(r.stderr, "No such object") {
		t.Fatalf("inspect after rm: %s", r)
	}
}

func TestDockerNameConflictAndMissing(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, "create", "--name", name, "busybox", "true"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	r := e.docker(t, "create", "--name", name, "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "is already in use by container") {
		t.Fatalf("duplicate name: %s", r)
	}
	r = e.docker(t, "rm", "no-such-container-xyz")
	if r.code != 1 || !strings.Contains(r.stderr, "No such container: no-such-container-xyz") {
		t.Fatalf("rm missing: %s", r)
	}
	r = e.docker(t, "start", "-a", name)
	if r.code != 0 {
		t.Fatalf("start -a: %s", r)
	}
}

func TestDockerImages(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"))
	if !strings.Contains(r.stdout, "busybox:latest") || !strings.Contains(r.stdout, "hello:latest") {
		t.Fatalf("images: %q", r.stdout)
	}
	must(t, e.docker(t, "tag", "busybox", "example/bb:v1"))
	insp := must(t, e.docker(t, "image", "inspect", "-f", "{{index .RepoTags 0}} {{.Os}} {{.Config.Cmd}}", "example/bb:v1"))
	if !strings.Contains(insp.stdout, "linux [sh]") {
		t.Fatalf("image inspect: %q", insp.stdout)
	}
	h := must(t, e.docker(t, "history", "busybox"))
	if !strings.HasPrefix(h.stdout, "IMAGE") {
		t.Fatalf("history: %q", h.stdout)
	}
	out := filepath.Join(t.TempDir(), "bb.tar")
	must(t, e.docker(t, "save", "-o", out, "example/bb:v1"))
	if st, err := os.Stat(out); err != nil || st.Size() < 100000 {
		t.Fatalf("save wrote %v %v", st, err)
	}
	rm := must(t, e.docker(t, "rmi", "example/bb:v1"))
	if !strings.Contains(rm.stdout, "Untagged: example/bb:v1") {
		t.Fatalf("rmi: %q", rm.stdout)
	}
	ld := must(t, e.docker(t, "load", "-i", out))
	if !strings.Contains(ld.stdout, "Loaded image: example/bb:v1") {
		t.Fatalf("load: %q", ld.stdout)
	}
	must(t, e.docker(t, "rmi", "example/bb:v1"))
	if r := e.docker(t, "rmi", "nonexist-image:latest"); r.code == 0 {
		t.Fatalf("rmi of a missing image succeeded: %s", r)
	}
}

func TestDockerVersionInfo(t *testing.T) {
	e := daemonEnv(t)
	v := must(t, e.docker(t, "version", "--format", "{{.Server.APIVersion}}"))
	if strings.TrimSpace(v.stdout) != "1.47" {
		t.Fatalf("server api version %q", v.stdout)
	}
	i := must(t, e.docker(t, "info", "--format", "{{.Driver}} {{.OSType}}"))
	if i.stdout != "overlay2 linux\n" {
		t.Fatalf("info: %q", i.stdout)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
