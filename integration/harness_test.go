// Package integration drives a real berth daemon — real containers in real
// namespaces — through berth's own CLI and the unmodified docker CLI.
// It needs root; elsewhere every test skips with the reason.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"berth/internal/fixture"
)

// env is one private daemon shared by the tests of this package.
type env struct {
	bin      string // the berth binary
	dir      string
	sock     string
	dataRoot string
	execRoot string
	daemon   *exec.Cmd
	exited   chan struct{} // closed when daemon has exited
	logPath  string
}

var (
	shared     *env
	sharedErr  error
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
		shared.cleanup()
	}
	os.Exit(code)
}

// daemonEnv returns the shared daemon, starting it (and loading the busybox
// and hello images) on first use.
func daemonEnv(t *testing.T) *env {
	t.Helper()
	fixture.RequireRoot(t)
	sharedOnce.Do(func() { shared, sharedErr = newEnv() })
	if sharedErr != nil {
		t.Fatalf("start berth daemon: %v", sharedErr)
	}
	return shared
}

func buildBerth(dir string) (string, error) {
	root, err := fixture.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func newEnv() (*env, error) {
	dir, err := os.MkdirTemp("", "berth-it-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"), sock: filepath.Join(dir, "berth.sock"), logPath: filepath.Join(dir, "daemon.log")}
	if e.bin, err = buildBerth(dir); err != nil {
		return nil, err
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	// fixtures: busybox and hello, loaded with berth's own commands
	bb := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(bb)
	if err != nil {
		return nil, err
	}
	if err := fixture.BusyboxImage(f, "busybox:latest"); err != nil {
		return nil, err
	}
	f.Close()
	if out, err := e.berthErr("load", "-i", bb); err != nil {
		return nil, fmt.Errorf("load busybox: %v: %s", err, out)
	}
	hb := filepath.Join(dir, "hello-bin")
	if err := fixture.BuildHello(hb); err != nil {
		return nil, err
	}
	ht := filepath.Join(dir, "hello.tar")
	f, err = os.Create(ht)
	if err != nil {
		return nil, err
	}
	if err := fixture.HelloImage(f, "hello:latest", hb); err != nil {
		return nil, err
	}
	f.Close()
	if out, err := e.berthErr("load", "-i", ht); err != nil {
		return nil, fmt.Errorf("load hello: %v: %s", err, out)
	}
	return e, nil
}

// start runs the daemon and waits for its socket to answer.
func (e *env) start() error {
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	bridge, subnet := testBridge(e.dir)
	e.daemon = exec.Command(e.bin, "daemon", "-H", "unix://"+e.sock, "--data-root", e.dataRoot, "--exec-root", e.execRoot,
		"--bridge-name", bridge, "--bridge-subnet", subnet)
	e.daemon.Stdout, e.daemon.Stderr = logf, logf
	if err := e.daemon.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	e.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(e.daemon)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(e.logPath)
			return fmt.Errorf("daemon exited at start; log:\n%s", b)
		default:
		}
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(e.logPath)
	return fmt.Errorf("daemon did not answer on %s; log:\n%s", e.sock, b)
}

// stop ends the daemon gracefully (containers stay with the keeper).
func (e *env) stop() {
	if e.daemon == nil || e.daemon.Process == nil {
		return
	}
	e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.daemon.Process.Kill()
		<-e.exited
	}
	e.daemon = nil
}

// kill9 ends the daemon with SIGKILL, as a crash would.
func (e *env) kill9() {
	e.daemon.Process.Kill()
	<-e.exited
	e.daemon = nil
}

// cleanup kills the keeper (and so every container left), unmounts what is
// left under the test dir and removes it.
func (e *env) cleanup() {
	if b, err := os.ReadFile(filepath.Join(e.execRoot, "keeper.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// The keeper's death does not end the containers: kill each init
	// (its pid namespace goes with it), checking the pid is still the
	// one the runtime recorded.
	killContainers(filepath.Join(e.execRoot, "runtime"))
	time.Sleep(100 * time.Millisecond)
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(e.dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i].Mountpoint, syscall.MNT_DETACH)
	}
	removeCgroups()
	removeTestBridge(e.dir)
	os.RemoveAll(e.dir)
}

// killContainers SIGKILLs the init of every container whose runtime state
// is under dir.
func killContainers(dir string) {
	states, _ := filepath.Glob(filepath.Join(dir, "*", "state.json"))
	for _, p := range states {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var st struct {
			Pid       int    `json:"pid"`
			InitStart uint64 `json:"initStart"`
		}
		if json.Unmarshal(b, &st) != nil || st.Pid <= 1 {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.Pid))
		if err != nil {
			continue
		}
		// field 22 (starttime) counts from after the ")" that ends the name
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 19 && f[19] == strconv.FormatUint(st.InitStart, 10) {
			syscall.Kill(st.Pid, syscall.SIGKILL)
		}
	}
}

// removeCgroups removes berth's cgroups left by killed containers.
func removeCgroups() {
	for _, base := range []string{"/sys/fs/cgroup"} {
		matches, _ := filepath.Glob(filepath.Join(base, "*", "berth", "*"))
		for _, m := range matches {
			syscall.Rmdir(m)
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

func (e *env) run(ctx context.Context, stdin string, name string, args ...string) result {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+e.sock, "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
	return runCmd(cmd, stdin)
}

// runCmd runs cmd with stdin as its input (none when empty) and returns
// its output and exit code, -1 when it did not exit by itself.
func runCmd(cmd *exec.Cmd, stdin string) result {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return result{out.String(), errb.String(), code}
}

// berth runs berth's CLI against the daemon.
func (e *env) berth(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.run(ctx, "", e.bin, args...)
}

func (e *env) berthErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := e.run(ctx, "", e.bin, args...)
	if r.code != 0 {
		return r.stdout + r.stderr, fmt.Errorf("berth %s: exit %d", strings.Join(args, " "), r.code)
	}
	return r.stdout, nil
}

// docker runs the unmodified docker CLI against berth.
func (e *env) docker(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.run(ctx, "", dockerCLI(t), args...)
}

func (e *env) dockerIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.run(ctx, stdin, dockerCLI(t), args...)
}

func dockerCLI(t *testing.T) string {
	p, err := exec.LookPath("docker")
	if _, statErr := os.Stat("/usr/local/bin/docker"); statErr == nil {
		p, err = "/usr/local/bin/docker", nil
	}
	if err != nil {
		t.Skip("docker CLI not installed: the compatibility tests need /usr/local/bin/docker")
	}
	return p
}

// must fails the test unless r exited 0.
func must(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("command failed: %s", r)
	}
	return r
}

// uniq returns a container name unique to this test.
func uniq(t *testing.T) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("%s-%d", n, time.Now().UnixNano()%100000)
}
