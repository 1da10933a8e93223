package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDaemonKilledContainersSurvive kills the daemon with SIGKILL while
// containers run: they keep running under the keeper, logs stay continuous,
// a container that exits meanwhile reports its true exit code, and restart
// policies are applied when the daemon comes back.
func TestDaemonKilledContainersSurvive(t *testing.T) {
	e := daemonEnv(t)
	long, short, always := uniq(t)+"-long", uniq(t)+"-short", uniq(t)+"-always"
	t.Cleanup(func() { e.docker(t, "rm", "-f", long, short, always) })
	must(t, e.docker(t, "run", "-d", "--name", long, "busybox", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"))
	must(t, e.docker(t, "run", "-d", "--name", short, "busybox", "sh", "-c", "sleep 1; exit 42"))
	must(t, e.docker(t, "run", "-d", "--name", always, "--restart", "always", "busybox", "sh", "-c", "sleep 1; exit 3"))
	pid := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.State.Pid}}", long)).stdout)

	e.kill9()
	time.Sleep(1500 * time.Millisecond) // short exits while no daemon runs
	if err := e.start(); err != nil {
		t.Fatal(err)
	}

	st := must(t, e.docker(t, "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", long)).stdout
	if st != "true "+pid+"\n" {
		t.Fatalf("long-running container after daemon restart: %q (pid was %s)", st, pid)
	}
	st = must(t, e.docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", short)).stdout
	if st != "exited 42\n" {
		t.Fatalf("container that exited during the outage: %q", st)
	}
	// logs are continuous: every tick number from 0 up appears once, in order
	waitFor(t, func() bool {
		return strings.Count(e.docker(t, "logs", long).stdout, "tick") > 12
	})
	lines := strings.Split(strings.TrimSpace(e.docker(t, "logs", long).stdout), "\n")
	for i, l := range lines {
		if want := "tick " + strconv.Itoa(i); l != want {
			t.Fatalf("log line %d = %q, want %q (gap or duplicate)", i, l, want)
		}
	}
	// exec and stop still work on the adopted container
	if r := must(t, e.docker(t, "exec", long, "echo", "adopted")); r.stdout != "adopted\n" {
		t.Fatalf("exec after restart: %q", r.stdout)
	}
	// the always-restart container keeps being restarted
	waitFor(t, func() bool {
		n := strings.TrimSpace(e.docker(t, "inspect", "-f", "{{.RestartCount}}", always).stdout)
		return n != "" && n != "0"
	})
	must(t, e.docker(t, "stop", "-t", "1", long))
}
