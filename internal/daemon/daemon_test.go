package daemon

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"HUP": unix.SIGHUP, "SIGTERM": unix.SIGTERM, "kill": unix.SIGKILL, "9": unix.SIGKILL, "WINCH": unix.SIGWINCH, "RTMIN+2": 36, "SIGRTMAX": 64} {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", "-1", "RTMIN+x"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) accepted", bad)
		}
	}
}

func TestProcessArgs(t *testing.T) {
	cases := []struct {
		cfg              container.Config
		imgEntry, imgCmd []string
		path             string
		args             []string
	}{
		{container.Config{}, nil, []string{"sh"}, "sh", []string{}},
		{container.Config{Cmd: []string{"echo", "hi"}}, []string{"/entry"}, []string{"def"}, "/entry", []string{"echo", "hi"}},
		{container.Config{Entrypoint: []string{"/bin/x"}}, []string{"/entry"}, []string{"def"}, "/bin/x", []string{}},
		{container.Config{}, []string{"/entry", "-v"}, []string{"def"}, "/entry", []string{"-v", "def"}},
	}
	for i, c := range cases {
		path, args := processArgs(&c.cfg, c.imgEntry, c.imgCmd)
		if path != c.path || len(args) != len(c.args) {
			t.Fatalf("case %d: %q %q, want %q %q", i, path, args, c.path, c.args)
		}
		for j := range args {
			if args[j] != c.args[j] {
				t.Fatalf("case %d: %q, want %q", i, args, c.args)
			}
		}
	}
}

func TestShouldRestart(t *testing.T) {
	onFail := container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}
	cases := []struct {
		p              container.RestartPolicy
		manual         bool
		code, restarts int
		want           bool
	}{
		{container.RestartPolicy{Name: container.RestartPolicyAlways}, false, 0, 5, true},
		{container.RestartPolicy{Name: container.RestartPolicyAlways}, true, 0, 0, false},
		{container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, false, 1, 0, true},
		{onFail, false, 1, 1, true},
		{onFail, false, 1, 2, false},
		{onFail, false, 0, 0, false},
		{container.RestartPolicy{Name: container.RestartPolicyDisabled}, false, 1, 0, false},
	}
	for i, c := range cases {
		if got := shouldRestart(c.p, c.manual, c.code, c.restarts); got != c.want {
			t.Errorf("case %d: shouldRestart = %v, want %v", i, got, c.want)
		}
	}
}

func TestStatusText(t *testing.T) {
	now := time.Now()
	if s := statusText(State{Status: container.StateRunning, StartedAt: now.Add(-4 * time.Second)}, now); s != "Up 4 seconds" {
		t.Errorf("running: %q", s)
	}
	if s := statusText(State{Status: container.StatePaused, StartedAt: now.Add(-time.Hour)}, now); s != "Up About an hour (Paused)" {
		t.Errorf("paused: %q", s)
	}
	if s := statusText(State{Status: container.StateExited, ExitCode: 3, FinishedAt: now.Add(-2 * time.Minute)}, now); s != "Exited (3) 2 minutes ago" {
		t.Errorf("exited: %q", s)
	}
	h := &container.Health{Status: container.Healthy}
	if s := statusText(State{Status: container.StateRunning, StartedAt: now.Add(-time.Minute), Health: h}, now); s != "Up About a minute (healthy)" {
		t.Errorf("healthy: %q", s)
	}
	if s := statusText(State{Status: container.StateCreated}, now); s != "Created" {
		t.Errorf("created: %q", s)
	}
}

func TestParsePS(t *testing.T) {
	out := "UID   PID  PPID  C STIME TTY TIME CMD\nroot  10   1     0 10:00 ?   00:00:00 sleep 300\nroot  11   1     0 10:00 ?   00:00:00 other thing\n"
	r, err := parsePS(out, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Processes) != 1 || r.Processes[0][7] != "sleep 300" || r.Processes[0][1] != "10" {
		t.Fatalf("processes: %q", r.Processes)
	}
	if _, err := parsePS("USER CMD\nroot x\n", nil); err == nil {
		t.Fatal("ps output without PID column accepted")
	}
}
