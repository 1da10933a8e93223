package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// These scenarios check that `docker run` options take effect inside the
// container, each observed from inside (or from the kernel's view of it).

func TestRunInitReapsZombies(t *testing.T) {
	e := daemonEnv(t)
	// An orphan is reparented to pid 1. Without --init pid 1 is `sleep`,
	// which never waits, so the orphan stays a zombie; berth-init reaps it.
	script := `sh -c "sleep 0.1 &"; exec sleep 300`
	plain, withInit := uniq(t)+"-plain", uniq(t)+"-init"
	must(t, e.docker(t, "run", "-d", "--name", plain, "busybox", "sh", "-c", script))
	must(t, e.docker(t, "run", "-d", "--init", "--name", withInit, "busybox", "sh", "-c", script))
	t.Cleanup(func() { e.docker(t, "rm", "-f", plain, withInit) })
	time.Sleep(600 * time.Millisecond)

	ps := must(t, e.docker(t, "exec", plain, "ps", "-o", "pid,stat,comm")).stdout
	if !regexp.MustCompile(`(?m)^\s*\d+\s+Z\s+sleep$`).MatchString(ps) {
		t.Fatalf("without --init the orphan should stay a zombie (the test's premise):\n%s", ps)
	}
	ps = must(t, e.docker(t, "exec", withInit, "ps", "-o", "pid,stat,comm")).stdout
	if !regexp.MustCompile(`(?m)^\s*1\s+S\s+berth-init$`).MatchString(ps) {
		t.Fatalf("with --init pid 1 must be berth-init:\n%s", ps)
	}
	if regexp.MustCompile(`(?m)^\s*\d+\s+Z`).MatchString(ps) {
		t.Fatalf("berth-init left a zombie:\n%s", ps)
	}
	cmdline := must(t, e.docker(t, "exec", withInit, "cat", "/proc/1/cmdline")).stdout
	if !strings.HasPrefix(cmdline, "/sbin/berth-init\x00--\x00sh\x00-c\x00") {
		t.Fatalf("pid 1 command line: %q", cmdline)
	}
	// The init passes the exit code and signals through.
	if r := e.docker(t, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 6"); r.code != 6 {
		t.Fatalf("--init exit code: %s", r)
	}
	must(t, e.docker(t, "stop", "-t", "5", withInit))
	if st := must(t, e.docker(t, "inspect", "-f", "{{.State.ExitCode}}", withInit)).stdout; st != "143\n" {
		t.Fatalf("SIGTERM through berth-init: exit %q, want 143", st)
	}
}

func TestRunReadOnlyAndTmpfs(t *testing.T) {
	e := daemonEnv(t)
	r := e.docker(t, "run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
		"touch /newfile; echo rc=$?; echo data > /scratch/f && cat /scratch/f; grep ' /scratch ' /proc/mounts; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; echo dd=$?")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if !strings.Contains(r.stderr, "Read-only file system") || !strings.Contains(r.stdout, "rc=1\n") {
		t.Fatalf("the root must be read-only: %s", r)
	}
	if !regexp.MustCompile(`data\ntmpfs /scratch tmpfs rw,.*size=1024k`).MatchString(r.stdout) {
		t.Fatalf("the tmpfs must be writable with its size: %q", r.stdout)
	}
	if !strings.Contains(r.stdout, "dd=1") {
		t.Fatalf("writing 2 MiB into a 1 MiB tmpfs must fail: %q", r.stdout)
	}
	// Without --read-only the root is writable.
	must(t, e.docker(t, "run", "--rm", "busybox", "touch", "/newfile"))
}

func TestRunBindMount(t *testing.T) {
	e := daemonEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "from-host"), []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.docker(t, "run", "--rm", "-v", dir+":/h:ro", "busybox", "sh", "-c", "cat /h/from-host; touch /h/new; echo rc=$?")
	if r.code != 0 || r.stdout != "host data\nrc=1\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("read-only bind: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Fatal("a read-only bind mount let the container write to the host")
	}
	must(t, e.docker(t, "run", "--rm", "-v", dir+":/h", "busybox", "sh", "-c", "echo from-container > /h/back"))
	if b, err := os.ReadFile(filepath.Join(dir, "back")); err != nil || string(b) != "from-container\n" {
		t.Fatalf("read-write bind: host sees %q, %v", b, err)
	}
	// A relative host path is not a bind mount but a volume name; a missing
	// absolute host dir is created (docker's -v behaviour).
	missing := filepath.Join(dir, "made", "by", "run")
	must(t, e.docker(t, "run", "--rm", "-v", missing+":/m", "busybox", "true"))
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Fatalf("-v with a missing host dir must create it: %v", err)
	}
}

func TestRunCapabilities(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_RAW", "busybox", "grep", "CapEff", "/proc/self/status"))
	if r.stdout != "CapEff:\t0000000000002000\n" {
		t.Fatalf("--cap-drop ALL --cap-add NET_RAW: %q", r.stdout)
	}
	r = e.docker(t, "run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1", "/tmp")
	if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Fatalf("chown without CAP_CHOWN must fail: %s", r)
	}
	must(t, e.docker(t, "run", "--rm", "busybox", "chown", "1", "/tmp"))
	r = must(t, e.docker(t, "run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "grep CapEff /proc/self/status"))
	if r.stdout != "CapEff:\t00000000a82425fb\n" {
		t.Fatalf("--cap-add SYS_ADMIN: %q", r.stdout)
	}
	if r := e.docker(t, "run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "NOT_A_CAP") {
		t.Fatalf("unknown capability: %s", r)
	}
}

func TestRunNoNewPrivileges(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"))
	if r.stdout != "NoNewPrivs:\t1\n" {
		t.Fatalf("no-new-privileges: %q", r.stdout)
	}
	r = must(t, e.docker(t, "run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status"))
	if r.stdout != "NoNewPrivs:\t0\n" {
		t.Fatalf("default: %q", r.stdout)
	}
	if r := e.docker(t, "run", "--rm", "--security-opt", "bogus-option", "busybox", "true"); r.code != 125 {
		t.Fatalf("unknown security option: %s", r)
	}
}

func TestRunMemoryOOMKilled(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	// The shell itself holds the string, so the OOM killer picks pid 1.
	r := e.docker(t, "run", "--name", name, "--memory", "8m", "--memory-swap", "8m", "busybox", "sh", "-c", `x=$(head -c 64000000 /dev/zero | tr '\0' a); echo survived`)
	if r.code != 137 || strings.Contains(r.stdout, "survived") {
		t.Fatalf("a container over its memory limit must be killed (137): %s", r)
	}
	st := must(t, e.docker(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}", name)).stdout
	if st != "true 137 8388608\n" {
		t.Fatalf("inspect after the OOM kill: %q, want \"true 137 8388608\"", st)
	}
	// Killed by a plain SIGKILL instead: not OOMKilled.
	other := name + "-kill"
	t.Cleanup(func() { e.docker(t, "rm", "-f", other) })
	must(t, e.docker(t, "run", "-d", "--name", other, "--memory", "8m", "busybox", "sleep", "300"))
	must(t, e.docker(t, "kill", other))
	must(t, e.docker(t, "wait", other))
	if st := must(t, e.docker(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", other)).stdout; st != "false 137\n" {
		t.Fatalf("inspect after kill: %q", st)
	}
}

func TestRunPidsLimit(t *testing.T) {
	e := daemonEnv(t)
	r := e.docker(t, "run", "--rm", "--pids-limit", "8", "busybox", "sh", "-c", "for i in $(seq 20); do sleep 30 & done; echo all-started")
	if r.code == 0 || strings.Contains(r.stdout, "all-started") || !strings.Contains(r.stderr, "can't fork") {
		t.Fatalf("20 processes under --pids-limit 8 must fail to fork: %s", r)
	}
	r = must(t, e.docker(t, "run", "--rm", "--pids-limit", "8", "busybox", "sh", "-c", "for i in 1 2 3; do sleep 1 & done; echo three-ok"))
	if r.stdout != "three-ok\n" {
		t.Fatalf("few processes under the limit: %q", r.stdout)
	}
}

func TestRunUlimit(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"))
	if r.stdout != "100\n200\n" {
		t.Fatalf("--ulimit nofile=100:200: %q", r.stdout)
	}
	r = must(t, e.docker(t, "run", "--rm", "--ulimit", "nproc=50", "busybox", "sh", "-c", "ulimit -u"))
	if r.stdout != "50\n" {
		t.Fatalf("--ulimit nproc=50: %q", r.stdout)
	}
	if r := e.docker(t, "run", "--rm", "--ulimit", "nofile=300:200", "busybox", "true"); r.code != 125 {
		t.Fatalf("soft limit above the hard one must be refused: %s", r)
	}
}

func TestRunRestartOnFailure(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 5"))
	deadline := time.Now().Add(15 * time.Second)
	var st string
	for time.Now().Before(deadline) {
		st = must(t, e.docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", name)).stdout
		if st == "2 exited 5\n" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st != "2 exited 5\n" {
		t.Fatalf("on-failure:2 after its retries: %q, want \"2 exited 5\"", st)
	}
	time.Sleep(time.Second)
	if st = must(t, e.docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name)).stdout; st != "2 exited\n" {
		t.Fatalf("restarted beyond the maximum: %q", st)
	}
	if logs := must(t, e.docker(t, "logs", name)).stdout; logs != "run\nrun\nrun\n" {
		t.Fatalf("1 run + 2 restarts must log three lines, got %q", logs)
	}
	// on-failure does not restart a container that succeeds.
	ok := name + "-ok"
	t.Cleanup(func() { e.docker(t, "rm", "-f", ok) })
	must(t, e.docker(t, "run", "-d", "--name", ok, "--restart", "on-failure:2", "busybox", "true"))
	must(t, e.docker(t, "wait", ok))
	time.Sleep(500 * time.Millisecond)
	if st := must(t, e.docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", ok)).stdout; st != "0 exited\n" {
		t.Fatalf("on-failure with exit 0: %q", st)
	}
}

func TestRunStopSignal(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "-d", "--name", name, "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
		`trap "echo got-usr1; exit 9" USR1; echo ready; while true; do sleep 0.1; done`))
	waitFor(t, func() bool { return e.docker(t, "logs", name).stdout == "ready\n" })
	start := time.Now()
	must(t, e.docker(t, "stop", "-t", "10", name))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v: the stop signal was not delivered", d)
	}
	if logs := must(t, e.docker(t, "logs", name)).stdout; logs != "ready\ngot-usr1\n" {
		t.Fatalf("logs: %q", logs)
	}
	if st := must(t, e.docker(t, "inspect", "-f", "{{.State.ExitCode}} {{.Config.StopSignal}}", name)).stdout; st != "9 SIGUSR1\n" {
		t.Fatalf("inspect: %q", st)
	}
}

func TestRunNetworkModes(t *testing.T) {
	e := daemonEnv(t)
	r := must(t, e.docker(t, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"))
	if r.stdout != "lo\n" {
		t.Fatalf("--network none must have only lo: %q", r.stdout)
	}
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Skipf("cannot list the host's interfaces to compare with --network host: %v", err)
	}
	// Containers' veths (vb*) and test daemons' bridges (bt*, bu*) come and
	// go with the tests running alongside: they are left out.
	stable := func(names []string) []string {
		var out []string
		for _, n := range names {
			if !strings.HasPrefix(n, "vb") && !strings.HasPrefix(n, "bt") && !strings.HasPrefix(n, "bu") {
				out = append(out, n)
			}
		}
		return out
	}
	var host []string
	for _, de := range entries {
		host = append(host, de.Name())
	}
	sort.Strings(host)
	host = stable(host)
	r = must(t, e.docker(t, "run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"))
	if got := stable(strings.Fields(r.stdout)); strings.Join(got, " ") != strings.Join(host, " ") {
		t.Fatalf("--network host sees %v, the host has %v", got, host)
	}
	hn, _ := os.Hostname()
	if r := must(t, e.docker(t, "run", "--rm", "--network", "host", "busybox", "hostname")); r.stdout != hn+"\n" {
		t.Fatalf("--network host hostname %q, host's %q", r.stdout, hn)
	}
	// An unknown network: 404 "network N not found", exit 125.
	if r := e.docker(t, "run", "--rm", "--network", "nosuchnet", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "network nosuchnet not found") {
		t.Fatalf("run --network nosuchnet: %s", r)
	}
}

func TestRunEntrypointAndEnvFile(t *testing.T) {
	e := daemonEnv(t)
	if r := must(t, e.docker(t, "run", "--rm", "--entrypoint", "echo", "busybox", "hi", "there")); r.stdout != "hi there\n" {
		t.Fatalf("--entrypoint echo: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "run", "--rm", "--entrypoint", "/bin/sh", "busybox", "-c", "echo $0")); r.stdout != "/bin/sh\n" {
		t.Fatalf("--entrypoint /bin/sh: %q", r.stdout)
	}
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "create", "--name", name, "--entrypoint", "printf", "busybox", "%s-%s\n", "a", "b"))
	if st := must(t, e.docker(t, "inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Path}}", name)).stdout; st != `["printf"] ["%s-%s\n","a","b"] printf`+"\n" {
		t.Fatalf("inspect entrypoint: %q", st)
	}
	if r := must(t, e.docker(t, "start", "-a", name)); r.stdout != "a-b\n" {
		t.Fatalf("start -a with an entrypoint: %q", r.stdout)
	}

	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("A=1\n# a comment\n\nB=two words\nPASSED\nEMPTY=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PASSED", "from-host")
	r := must(t, e.docker(t, "run", "--rm", "--env-file", envFile, "-e", "A=override", "busybox", "sh", "-c", `echo "$A|$B|$PASSED|${EMPTY-unset}"`))
	if r.stdout != "override|two words|from-host|\n" {
		t.Fatalf("--env-file: %q", r.stdout)
	}
	if r := e.docker(t, "run", "--rm", "--env-file", filepath.Join(t.TempDir(), "missing"), "busybox", "true"); r.code != 125 {
		t.Fatalf("missing --env-file: %s", r)
	}
}

func TestLabelsAndPsFilter(t *testing.T) {
	e := daemonEnv(t)
	base := uniq(t)
	a, b := base+"-a", base+"-b"
	t.Cleanup(func() { e.docker(t, "rm", "-f", a, b) })
	must(t, e.docker(t, "run", "-d", "--name", a, "-l", "itlabel=one", "-l", "itflag", "busybox", "sleep", "300"))
	must(t, e.docker(t, "create", "--name", b, "-l", "itlabel=two", "busybox", "true"))
	names := func(args ...string) string {
		r := must(t, e.docker(t, append([]string{"ps", "--format", "{{.Names}}"}, args...)...))
		f := strings.Fields(r.stdout)
		sort.Strings(f)
		return strings.Join(f, " ")
	}
	if got := names("-a", "--filter", "label=itlabel"); got != a+" "+b {
		t.Fatalf("label=itlabel: %q", got)
	}
	if got := names("-a", "--filter", "label=itlabel=two"); got != b {
		t.Fatalf("label=itlabel=two: %q", got)
	}
	if got := names("--filter", "label=itlabel=two"); got != "" {
		t.Fatalf("label filter without -a lists a created container: %q", got)
	}
	if got := names("-a", "--filter", "label=itflag", "--filter", "label=itlabel=one"); got != a {
		t.Fatalf("two label filters (and): %q", got)
	}
	if got := names("-a", "--filter", "label=itlabel=three"); got != "" {
		t.Fatalf("no match: %q", got)
	}
	if r := must(t, e.docker(t, "inspect", "-f", "{{json .Config.Labels}}", a)); r.stdout != `{"itflag":"","itlabel":"one"}`+"\n" {
		t.Fatalf("labels in inspect: %q", r.stdout)
	}
}

// TestRunFastExitsNotLostOnRestart: a process that exits at once can have
// its exit reported before its start is acknowledged; restarted or not, the
// container must end up exited, never "running" forever.
func TestRunFastExitsNotLostOnRestart(t *testing.T) {
	e := daemonEnv(t)
	base := uniq(t)
	var names []string
	for i := range 12 {
		n := fmt.Sprintf("%s-%d", base, i)
		names = append(names, n)
		must(t, e.docker(t, "run", "-d", "--name", n, "--restart", "on-failure:1", "busybox", "sh", "-c", "exit 3"))
	}
	t.Cleanup(func() { e.docker(t, append([]string{"rm", "-f"}, names...)...) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := must(t, e.docker(t, append([]string{"inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"}, names...)...))
		if strings.Count(r.stdout, "1 exited 3\n") == len(names) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers whose process exited at once are not all \"1 exited 3\":\n%s", r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
