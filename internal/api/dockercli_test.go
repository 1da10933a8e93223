package api

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// These tests run the real docker CLI (28.2.2, API 1.50 types) against the
// server with the fake backend: they prove the wire format before a real
// daemon exists.

const dockerCLIPath = "/usr/local/bin/docker"

type cliResult struct {
	stdout, stderr string
	code           int
}

func dockerCLI(t *testing.T, ts *testServer, stdin string, args ...string) cliResult {
	t.Helper()
	if _, err := os.Stat(dockerCLIPath); err != nil {
		t.Skipf("docker CLI not available at %s", dockerCLIPath)
	}
	cfg := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLIPath, args...)
	cmd.Env = []string{
		"DOCKER_HOST=unix://" + ts.sock,
		"DOCKER_CONFIG=" + cfg,
		"HOME=" + cfg,
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("docker %v: %v", args, err)
		}
		res.code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("docker %v timed out; stdout %q stderr %q", args, res.stdout, res.stderr)
	}
	return res
}

func (r cliResult) expect(t *testing.T, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
}

// callsSince returns the backend calls recorded after the first n.
func callsSince(ts *testServer, n int) string {
	return strings.Join(ts.fake.callLog()[n:], ",")
}

func TestDockerCLISystem(t *testing.T) {
	ts := startServer(t)

	r := dockerCLI(t, ts, "", "version")
	r.expect(t, 0, "docker version")
	if !regexp.MustCompile(`API version:\s+1\.47 \(minimum version 1\.24\)`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "0.0-fake") {
		t.Errorf("docker version output:\n%s", r.stdout)
	}
	r = dockerCLI(t, ts, "", "version", "--format", "{{.Server.APIVersion}}")
	if r.stdout != "1.47\n" {
		t.Errorf("version --format: %q %q", r.stdout, r.stderr)
	}

	r = dockerCLI(t, ts, "", "info")
	r.expect(t, 0, "docker info")
	for _, want := range []string{"Server Version: 0.0-fake", "Swarm: inactive", "Storage Driver: overlay2", "Name: fakehost"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docker info lacks %q:\n%s", want, r.stdout)
		}
	}

	r = dockerCLI(t, ts, "", "images")
	r.expect(t, 0, "docker images")
	if !regexp.MustCompile(`(?m)^busybox\s+latest\s+abababababab`).MatchString(r.stdout) {
		t.Errorf("docker images:\n%s", r.stdout)
	}

	r = dockerCLI(t, ts, "", "inspect", "nosuch")
	r.expect(t, 1, "docker inspect nosuch")
	if strings.TrimSpace(r.stdout) != "[]" || !strings.Contains(r.stderr, "Error: No such object: nosuch") {
		t.Errorf("inspect fall-through: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = dockerCLI(t, ts, "", "network", "ls", "--format", "{{.Name}} {{.Driver}}")
	r.expect(t, 0, "docker network ls")
	if r.stdout != "bridge bridge\nhost host\nnone null\n" {
		t.Errorf("network ls: %q", r.stdout)
	}

	r = dockerCLI(t, ts, "", "system", "df")
	r.expect(t, 0, "docker system df")
	if !strings.Contains(r.stdout, "Images") || !strings.Contains(r.stdout, "Build Cache") {
		t.Errorf("system df: %q %q", r.stdout, r.stderr)
	}

	// events with --since/--until: past events, then the stream ends.
	dockerCLI(t, ts, "", "create", "--name", "evt", "busybox").expect(t, 0, "create for events")
	// --until is sent in whole seconds: let the event's second pass.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	r = dockerCLI(t, ts, "", "events", "--since", "1m", "--until", "0s")
	r.expect(t, 0, "docker events --until")
	if !regexp.MustCompile(`container create [0-9a-f]{64} \(image=busybox, name=evt\)`).MatchString(r.stdout) {
		t.Errorf("docker events: %q %q", r.stdout, r.stderr)
	}
}

func TestDockerCLIContainers(t *testing.T) {
	ts := startServer(t)

	// run -d: create, wait (headers flushed at once), start; no attach.
	n := len(ts.fake.callLog())
	r := dockerCLI(t, ts, "", "run", "-d", "--name", "web", "busybox", "sleep")
	r.expect(t, 0, "docker run -d")
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.stdout) {
		t.Errorf("run -d printed %q (stderr %q)", r.stdout, r.stderr)
	}
	if got := callsSince(ts, n); got != "create,wait,start" {
		t.Errorf("run -d call order %s", got)
	}

	r = dockerCLI(t, ts, "", "ps", "--format", "{{.Names}}|{{.Status}}|{{.Command}}")
	r.expect(t, 0, "docker ps")
	if r.stdout != "web|Up 2 seconds|\"sleep\"\n" {
		t.Errorf("docker ps: %q", r.stdout)
	}
	r = dockerCLI(t, ts, "", "ps")
	if !regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+busybox\s+"sleep"\s+.*\s+Up 2 seconds\s+web$`).MatchString(r.stdout) {
		t.Errorf("docker ps table:\n%s", r.stdout)
	}

	// start of a running container: 304, the CLI prints the name.
	r = dockerCLI(t, ts, "", "start", "web")
	r.expect(t, 0, "docker start (already running)")
	if r.stdout != "web\n" {
		t.Errorf("start 304 printed %q", r.stdout)
	}

	r = dockerCLI(t, ts, "", "exec", "web", "echo", "hello", "exec")
	r.expect(t, 0, "docker exec")
	if r.stdout != "hello exec\n" {
		t.Errorf("exec output %q", r.stdout)
	}
	r = dockerCLI(t, ts, "", "exec", "web", "nosuchcmd")
	r.expect(t, 126, "docker exec missing binary")
	if !strings.Contains(r.stdout, "executable file not found") {
		t.Errorf("exec missing binary output %q %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "", "exec", "-d", "web", "echo", "bg")
	r.expect(t, 0, "docker exec -d")

	r = dockerCLI(t, ts, "", "inspect", "--format", "{{.Name}} {{.State.Running}} {{.Config.Tty}}", "web")
	r.expect(t, 0, "docker inspect web")
	if r.stdout != "/web true false\n" {
		t.Errorf("inspect: %q", r.stdout)
	}

	r = dockerCLI(t, ts, "", "stop", "web")
	r.expect(t, 0, "docker stop")
	r = dockerCLI(t, ts, "", "stop", "web")
	r.expect(t, 0, "docker stop (already stopped)")
	if r.stdout != "web\n" {
		t.Errorf("stop 304 printed %q", r.stdout)
	}

	// run attached: create, attach (101), wait, start; frames decoded.
	n = len(ts.fake.callLog())
	r = dockerCLI(t, ts, "", "run", "--rm", "busybox", "echo", "hi", "there")
	r.expect(t, 0, "docker run --rm echo")
	if r.stdout != "hi there\n" {
		t.Errorf("run output %q (stderr %q)", r.stdout, r.stderr)
	}
	if got := callsSince(ts, n); got != "create,attach,wait,start" {
		t.Errorf("run call order %s", got)
	}

	r = dockerCLI(t, ts, "", "run", "--name", "failer", "busybox", "fail")
	r.expect(t, 3, "docker run fail")
	if r.stderr != "oops\n" || r.stdout != "" {
		t.Errorf("run fail: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "", "logs", "failer")
	r.expect(t, 0, "docker logs")
	if r.stderr != "oops\n" {
		t.Errorf("logs: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = dockerCLI(t, ts, "line1\nline2\n", "run", "-i", "--rm", "busybox", "cat")
	r.expect(t, 0, "docker run -i cat")
	if r.stdout != "line1\nline2\n" {
		t.Errorf("run -i output %q (stderr %q)", r.stdout, r.stderr)
	}

	// start -a: inspect, attach, wait, start; then docker wait.
	dockerCLI(t, ts, "", "create", "--name", "sa", "busybox", "fail").expect(t, 0, "docker create")
	r = dockerCLI(t, ts, "", "start", "-a", "sa")
	r.expect(t, 3, "docker start -a")
	if r.stderr != "oops\n" {
		t.Errorf("start -a: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "", "wait", "sa")
	if r.stdout != "3\n" {
		t.Errorf("docker wait: %q %q", r.stdout, r.stderr)
	}
	dockerCLI(t, ts, "", "rm", "sa").expect(t, 0, "docker rm sa")

	r = dockerCLI(t, ts, "", "rm", "nosuch")
	r.expect(t, 1, "docker rm nosuch")
	if !strings.Contains(r.stderr, "Error response from daemon: No such container: nosuch") {
		t.Errorf("rm missing: %q", r.stderr)
	}
	r = dockerCLI(t, ts, "", "rm", "failer", "web")
	r.expect(t, 0, "docker rm")
	if r.stdout != "failer\nweb\n" && r.stdout != "web\nfailer\n" {
		t.Errorf("rm printed %q", r.stdout)
	}

	// Missing image: create 404, pull, create again.
	r = dockerCLI(t, ts, "", "run", "--rm", "alpine", "echo", "pulled")
	r.expect(t, 0, "docker run with pull")
	if r.stdout != "pulled\n" || !strings.Contains(r.stderr, "Unable to find image 'alpine:latest' locally") {
		t.Errorf("run with pull: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "", "run", "--rm", "nosuchimage")
	r.expect(t, 125, "docker run with failing pull")
	if !strings.Contains(r.stderr, "manifest unknown") {
		t.Errorf("failing pull stderr %q", r.stderr)
	}

	r = dockerCLI(t, ts, "", "run", "--rm", "busybox", "/no/such/binary")
	r.expect(t, 127, "docker run of a missing binary")
}

func TestDockerCLIImages(t *testing.T) {
	ts := startServer(t)

	r := dockerCLI(t, ts, "", "tag", "busybox", "127.0.0.1:5002/a/b:t")
	r.expect(t, 0, "docker tag")
	r = dockerCLI(t, ts, "", "image", "inspect", "--format", "{{index .RepoTags 0}}", "127.0.0.1:5002/a/b:t")
	r.expect(t, 0, "docker image inspect")
	if r.stdout != "127.0.0.1:5002/a/b:t\n" {
		t.Errorf("image inspect: %q %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "", "history", "busybox")
	r.expect(t, 0, "docker history")

	r = dockerCLI(t, ts, "garbage", "load")
	r.expect(t, 1, "docker load of a bad tar")
	if !strings.Contains(r.stderr, "Error processing tar file(exit status 1): unexpected EOF") {
		t.Errorf("bad load: %q %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "TAR...", "load")
	r.expect(t, 0, "docker load")
	if r.stdout != "Loaded image: loaded:v1\n" {
		t.Errorf("load: %q %q", r.stdout, r.stderr)
	}

	r = dockerCLI(t, ts, "TARdata", "import", "-", "apicap/imported:v1")
	r.expect(t, 0, "docker import")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.stdout) {
		t.Errorf("import: %q %q", r.stdout, r.stderr)
	}
	r = dockerCLI(t, ts, "notatar", "import", "-", "apicap/imported:bad")
	r.expect(t, 1, "docker import of a bad tar")
	if !strings.Contains(r.stderr, "Error response from daemon: Error processing tar file") {
		t.Errorf("bad import: %q", r.stderr)
	}

	r = dockerCLI(t, ts, "", "rmi", "127.0.0.1:5002/a/b:t")
	r.expect(t, 0, "docker rmi")
	if !strings.Contains(r.stdout, "Untagged: 127.0.0.1:5002/a/b:t") {
		t.Errorf("rmi: %q", r.stdout)
	}
	r = dockerCLI(t, ts, "", "push", "127.0.0.1:5002/a/b:t")
	if r.code == 0 || !strings.Contains(r.stderr, "tag does not exist") {
		t.Errorf("push: exit %d %q", r.code, r.stderr)
	}
}

// TestDockerCLIRunTTY runs `docker run -it` on a pseudo-terminal: the
// resize the CLI sends after start, then raw (unframed) output and the exit
// code from wait once the container is killed.
func TestDockerCLIRunTTY(t *testing.T) {
	ts := startServer(t)
	if _, err := os.Stat(dockerCLIPath); err != nil {
		t.Skipf("docker CLI not available at %s", dockerCLIPath)
	}
	cfg := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	echo := exec.CommandContext(ctx, dockerCLIPath, "run", "-it", "--rm", "busybox", "echo", "on", "tty")
	echo.Env = []string{"DOCKER_HOST=unix://" + ts.sock, "DOCKER_CONFIG=" + cfg, "HOME=" + cfg, "TERM=xterm"}
	ept, err := pty.StartWithSize(echo, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatalf("start docker on a pty: %v", err)
	}
	eout, _ := io.ReadAll(ept)
	ept.Close()
	if err := echo.Wait(); err != nil || !strings.Contains(string(eout), "on tty") || strings.Contains(string(eout), "\x01\x00") {
		t.Errorf("docker run -it echo: %v, output %q", err, eout)
	}

	// The first run may have recorded a 30x100 resize too (for its own
	// container): wait for this one's only.
	ts.fake.mu.Lock()
	ts.fake.resizes = nil
	ts.fake.mu.Unlock()
	cmd := exec.CommandContext(ctx, dockerCLIPath, "run", "-it", "--name", "tty", "busybox", "sleep")
	cmd.Env = []string{"DOCKER_HOST=unix://" + ts.sock, "DOCKER_CONFIG=" + cfg, "HOME=" + cfg, "TERM=xterm"}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatalf("start docker on a pty: %v", err)
	}
	defer ptmx.Close()
	outCh := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // EIO once the CLI exits
		outCh <- b
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.fake.mu.Lock()
		resizes := strings.Join(ts.fake.resizes, ",")
		ts.fake.mu.Unlock()
		if strings.Contains(resizes, "30x100") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 30x100 resize after start; got %q", resizes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/tty/kill", ""); code != 204 {
		t.Fatalf("kill: %d %s", code, body)
	}
	err = cmd.Wait()
	out := <-outCh
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Errorf("docker run -it: %v, want exit 137; output %q", err, out)
	}
	ts.do(t, "DELETE", "/v1.47/containers/tty?force=1", "")
}
