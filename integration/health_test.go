package integration

import (
	"strings"
	"testing"
)

func TestHealthcheckStatusAndFilter(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok && echo fine",
		"--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "300"))
	health := func() string {
		return strings.TrimSpace(e.docker(t, "inspect", "-f", "{{.State.Health.Status}}", name).stdout)
	}
	waitFor(t, func() bool { return health() == "unhealthy" })
	if r := must(t, e.docker(t, "ps", "-q", "--filter", "health=unhealthy", "--filter", "name="+name)); r.stdout == "" {
		t.Fatalf("ps --filter health=unhealthy does not list %s", name)
	}
	must(t, e.docker(t, "exec", name, "touch", "/tmp/ok"))
	waitFor(t, func() bool { return health() == "healthy" })
	st := must(t, e.docker(t, "ps", "--format", "{{.Status}}", "--filter", "name="+name)).stdout
	if !strings.Contains(st, "(healthy)") {
		t.Fatalf("ps status %q lacks (healthy)", st)
	}
	out := must(t, e.docker(t, "inspect", "-f", "{{(index .State.Health.Log 0).ExitCode}} {{.State.Health.FailingStreak}}", name)).stdout
	if !strings.HasSuffix(strings.TrimSpace(out), " 0") {
		t.Fatalf("health log/streak: %q", out)
	}
	last := must(t, e.docker(t, "inspect", "-f", "{{range .State.Health.Log}}{{.Output}}{{end}}", name)).stdout
	if !strings.Contains(last, "fine") {
		t.Fatalf("probe output not recorded: %q", last)
	}
	if r := e.docker(t, "run", "--rm", "--health-interval", "100us", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "Interval in Healthcheck cannot be less than 1ms") {
		t.Fatalf("invalid health interval accepted: %s", r)
	}
}

// TestHealthOnFailure shows berth's addition to docker: act on unhealthy.
func TestHealthOnFailure(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.berth(t, "rm", "-f", name) })
	must(t, e.berth(t, "run", "-d", "--name", name, "--health-cmd", "false", "--health-interval", "100ms",
		"--health-retries", "1", "--health-on-failure", "kill", "busybox", "sleep", "300"))
	waitFor(t, func() bool {
		return e.berth(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout == "exited 137\n"
	})
	if r := e.berth(t, "run", "--rm", "--health-on-failure", "explode", "busybox", "true"); r.code != 125 {
		t.Fatalf("bad --health-on-failure value: %s", r)
	}
}
