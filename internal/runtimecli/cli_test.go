package runtimecli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/fixture"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// berthBinary builds cmd/berth once per test binary run.
func berthBinary(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containers through the built binary")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "berth-runtimecli-test-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		repo := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "berth"), "./cmd/berth")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("%s", out)
			return
		}
		buildErr = os.Symlink("berth", filepath.Join(binDir, "berth-runtime"))
	})
	if buildErr != nil {
		t.Fatalf("build berth: %v", buildErr)
	}
	return filepath.Join(binDir, "berth")
}

type cli struct {
	t      *testing.T
	bin    string
	root   string
	bundle string
}

func newCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	c := &cli{t: t, bin: berthBinary(t), root: t.TempDir(), bundle: t.TempDir()}
	if err := fixture.BusyboxRootfs(filepath.Join(c.bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	if _, _, code := c.run("spec", "--bundle", c.bundle); code != 0 {
		t.Fatal("spec failed")
	}
	c.edit(func(s *specs.Spec) {
		s.Process.Terminal = false
		s.Process.Args = args
	})
	t.Cleanup(func() {
		out, _, _ := c.run("list", "-q")
		for _, id := range strings.Fields(out) {
			c.run("delete", "--force", id)
		}
	})
	return c
}

func (c *cli) edit(fn func(*specs.Spec)) {
	p := filepath.Join(c.bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatal(err)
	}
	fn(&s)
	b, _ = json.Marshal(&s)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// run runs `berth-runtime --root <root> args...` in the bundle.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(filepath.Dir(c.bin), "berth-runtime"), append([]string{"--root", c.root}, args...)...)
	cmd.Dir = c.bundle
	// Files, not pipes: a created container keeps the stdio of `create`
	// open, and exec.Cmd would wait for pipes to close.
	dir := c.t.TempDir()
	outF, _ := os.Create(filepath.Join(dir, "out"))
	errF, _ := os.Create(filepath.Join(dir, "err"))
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	err := cmd.Run()
	out, _ := os.ReadFile(outF.Name())
	errb, _ := os.ReadFile(errF.Name())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return string(out), string(errb), code
}

func TestSpecWritesValidConfig(t *testing.T) {
	c := newCLI(t, "true")
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(c.bundle, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil || s.Root.Path != "rootfs" || s.Version != specs.Version {
		t.Errorf("config.json: %v %+v", err, s.Root)
	}
	if _, stderr, code := c.run("spec", "--bundle", c.bundle); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("spec over an existing config.json: exit %d, %q", code, stderr)
	}
}

func TestRunExitCode(t *testing.T) {
	c := newCLI(t, "sh", "-c", "echo out; hostname; exit 42")
	out, stderr, code := c.run("run", "ctr")
	if code != 42 || out != "out\nrunc\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if list, _, _ := c.run("list", "-q"); strings.TrimSpace(list) != "" {
		t.Errorf("container left after run: %q", list)
	}
	// Through the berth binary itself, too.
	cmd := exec.Command(c.bin, "runtime", "--root", c.root, "run", "ctr2")
	cmd.Dir = c.bundle
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 42 {
		t.Errorf("berth runtime run: %v", err)
	}
}

func TestCreateStartStateKillDelete(t *testing.T) {
	c := newCLI(t, "sleep", "100")
	pidFile := filepath.Join(t.TempDir(), "pid")
	if _, stderr, code := c.run("create", "--pid-file", pidFile, "cli-life"); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	state := func() map[string]any {
		out, stderr, code := c.run("state", "cli-life")
		if code != 0 {
			t.Fatalf("state: %s", stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if s := state(); s["status"] != "created" || s["bundle"] != c.bundle {
		t.Errorf("after create: %v", s)
	}
	if b, _ := os.ReadFile(pidFile); len(b) == 0 {
		t.Error("no pid file")
	}
	if _, stderr, code := c.run("start", "cli-life"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	if s := state(); s["status"] != "running" {
		t.Errorf("after start: %v", s)
	}
	out, _, _ := c.run("ps", "--format", "json", "cli-life")
	var pids []int
	if err := json.Unmarshal([]byte(out), &pids); err != nil || len(pids) != 1 {
		t.Errorf("ps: %q %v", out, err)
	}
	out, _, _ = c.run("exec", "cli-life", "sh", "-c", "echo in-$(hostname); exit 5")
	if out != "in-runc\n" {
		t.Errorf("exec output %q", out)
	}
	if _, _, code := c.run("exec", "cli-life", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exec exit code %d, want 5", code)
	}
	if _, _, code := c.run("pause", "cli-life"); code != 0 || state()["status"] != "paused" {
		t.Error("pause")
	}
	if _, _, code := c.run("resume", "cli-life"); code != 0 || state()["status"] != "running" {
		t.Error("resume")
	}
	if out, _, code := c.run("events", "--stats", "cli-life"); code != 0 || !strings.Contains(out, `"type":"stats"`) {
		t.Errorf("events --stats: %d %q", code, out)
	}
	if _, _, code := c.run("update", "--pids-limit", "50", "cli-life"); code != 0 {
		t.Error("update")
	}
	if out, _, _ := c.run("list"); !strings.Contains(out, "cli-life") || !strings.Contains(out, "running") {
		t.Errorf("list: %q", out)
	}
	if _, stderr, code := c.run("delete", "cli-life"); code != 1 || !strings.Contains(stderr, "running") {
		t.Errorf("delete of a running container without --force: exit %d %q", code, stderr)
	}
	if _, stderr, code := c.run("kill", "cli-life", "KILL"); code != 0 {
		t.Errorf("kill: %s", stderr)
	}
	if _, stderr, code := c.run("delete", "cli-life"); code != 0 {
		// The init may take a moment to die; force is then fine.
		if _, stderr2, code := c.run("delete", "--force", "cli-life"); code != 0 {
			t.Errorf("delete: %s / %s", stderr, stderr2)
		}
	}
	if _, stderr, code := c.run("state", "cli-life"); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Errorf("state after delete: %d %q", code, stderr)
	}
}

func TestBadInputExitsOne(t *testing.T) {
	c := newCLI(t, "true")
	if _, stderr, code := c.run("start", "nosuch"); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Errorf("start of unknown id: %d %q", code, stderr)
	}
	c.edit(func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_NOPE"} })
	logFile := filepath.Join(t.TempDir(), "log.json")
	if _, stderr, code := c.run("--log", logFile, "--log-format", "json", "run", "x"); code != 1 || !strings.Contains(stderr, "CAP_NOPE") {
		t.Errorf("run with an unknown capability: %d %q", code, stderr)
	}
	if b, _ := os.ReadFile(logFile); !bytes.Contains(b, []byte(`"level":"error"`)) || !bytes.Contains(b, []byte("CAP_NOPE")) {
		t.Errorf("--log json has %q", b)
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), []byte("{nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := c.run("create", "y"); code != 1 || !strings.Contains(stderr, "config.json") {
		t.Errorf("create with invalid config.json: %d %q", code, stderr)
	}
	if out, _, _ := c.run("list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("left behind: %q", out)
	}
}
