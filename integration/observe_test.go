package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These scenarios watch containers from outside: events, stats and logs.

// unixTime formats t the way --since and --until take it.
func unixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func TestEventsContainerLifecycle(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	since := time.Now().Add(-time.Second)
	if r := e.docker(t, "run", "--name", name, "busybox", "sh", "-c", "exit 4"); r.code != 4 {
		t.Fatalf("run: %s", r)
	}
	must(t, e.docker(t, "rm", name))
	until := time.Now().Add(100 * time.Millisecond)
	time.Sleep(150 * time.Millisecond)

	r := must(t, e.docker(t, "events", "--since", unixTime(since), "--until", unixTime(until),
		"--filter", "container="+name, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"))
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(l, " attach ") {
			continue // docker sends it for run without -d; not what this checks
		}
		got = append(got, l)
	}
	want := []string{
		"container create " + name + " <no value>",
		"container start " + name + " <no value>",
		"container die " + name + " 4",
		"container destroy " + name + " <no value>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events for %s:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The filter is honoured: another container's events are not listed.
	other := uniq(t) + "-other"
	must(t, e.docker(t, "run", "--rm", "--name", other, "busybox", "true"))
	until = time.Now().Add(100 * time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	r = must(t, e.docker(t, "events", "--since", unixTime(since), "--until", unixTime(until), "--filter", "container="+name, "--format", "{{.Actor.Attributes.name}}"))
	if strings.Contains(r.stdout, other) {
		t.Fatalf("--filter container=%s listed %s:\n%s", name, other, r.stdout)
	}
	// Without the filter both appear, each with its die event.
	r = must(t, e.docker(t, "events", "--since", unixTime(since), "--until", unixTime(until), "--filter", "event=die", "--format", "{{.Actor.Attributes.name}}={{.Actor.Attributes.exitCode}}"))
	if !strings.Contains(r.stdout, name+"=4\n") || !strings.Contains(r.stdout, other+"=0\n") {
		t.Fatalf("die events: %q", r.stdout)
	}
}

// dockerFollow starts the docker CLI with args (a command that streams,
// like events or logs -f) against e's daemon for at most 30 s and returns
// its stdout; the command is stopped when the test ends.
func (e *env) dockerFollow(t *testing.T, args ...string) io.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, dockerCLI(t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return out
}

// TestEventsStream reads `docker events` live while a container runs.
func TestEventsStream(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	out := e.dockerFollow(t, "events", "--filter", "container="+name, "--format", "{{.Action}}")
	time.Sleep(300 * time.Millisecond) // let the subscription reach the daemon
	must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sleep", "300"))
	must(t, e.docker(t, "rm", "-f", name))
	sc := bufio.NewScanner(out)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
		if sc.Text() == "destroy" {
			break
		}
	}
	joined := strings.Join(got, " ")
	if !regexp.MustCompile(`^create start .*kill die destroy$`).MatchString(joined) {
		t.Fatalf("live events: %q", joined)
	}
}

func TestStatsNoStream(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "--memory", "64m", "busybox", "sh", "-c", "x=$(head -c 3000000 /dev/zero | tr '\\0' a); sleep 300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	time.Sleep(300 * time.Millisecond)
	r := must(t, e.docker(t, "stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", name))
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\|([0-9.]+)(B|KiB|MiB) / 64MiB\|(\d+)\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stats row: %q", r.stdout)
	}
	if m[1] == "0" || m[3] == "0" {
		t.Fatalf("stats shows no memory or no pids in use: %q", r.stdout)
	}
	// The default table: a header and one row naming the container.
	r = must(t, e.docker(t, "stats", "--no-stream", name))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(lines[1], name) || !strings.Contains(lines[1], "/ 64MiB") {
		t.Fatalf("stats table: %q", r.stdout)
	}
	// A missing container is an error, not an empty table.
	if r := e.docker(t, "stats", "--no-stream", "no-such-container-stats"); r.code == 0 {
		t.Fatalf("stats of a missing container: %s", r)
	}
}

func TestLogsOptions(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sh", "-c",
		"for i in 1 2 3 4 5; do echo line$i; done; sleep 0.2; echo errline >&2; while [ ! -e /go ]; do sleep 0.05; done; echo late1; sleep 0.2; echo late2; exec sleep 300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	waitFor(t, func() bool { return strings.Contains(e.docker(t, "logs", name).stderr, "errline") })

	// stdout and stderr are separate pipes: the sleep orders them in the log.
	if r := must(t, e.docker(t, "logs", "--tail", "2", name)); r.stdout != "line5\n" || r.stderr != "errline\n" {
		t.Fatalf("logs --tail 2: %s", r)
	}
	if r := must(t, e.docker(t, "logs", "--tail", "0", name)); r.stdout != "" || r.stderr != "" {
		t.Fatalf("logs --tail 0: %s", r)
	}
	r := must(t, e.docker(t, "logs", "-t", name))
	tsLine := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line\d$`)
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !tsLine.MatchString(l) {
			t.Fatalf("logs -t line %q lacks an RFC 3339 timestamp", l)
		}
	}

	// Follow from now: only lines written after it arrive, as they are written.
	mark := time.Now()
	out := e.dockerFollow(t, "logs", "-f", "--since", unixTime(mark), name)
	time.Sleep(200 * time.Millisecond)
	must(t, e.docker(t, "exec", name, "touch", "/go"))
	sc := bufio.NewScanner(out)
	var followed []string
	for len(followed) < 2 && sc.Scan() {
		followed = append(followed, sc.Text())
	}
	if strings.Join(followed, ",") != "late1,late2" {
		t.Fatalf("logs -f --since now: %q", followed)
	}

	// --since and --until cut the history at the mark.
	r = must(t, e.docker(t, "logs", "--since", unixTime(mark), name))
	if r.stdout != "late1\nlate2\n" || r.stderr != "" {
		t.Fatalf("logs --since: %s", r)
	}
	r = must(t, e.docker(t, "logs", "--until", unixTime(mark), name))
	if r.stdout != "line1\nline2\nline3\nline4\nline5\n" || r.stderr != "errline\n" {
		t.Fatalf("logs --until: %s", r)
	}
	if r := e.docker(t, "logs", "no-such-container-logs"); r.code != 1 || !strings.Contains(r.stderr, "No such container: no-such-container-logs") {
		t.Fatalf("logs of a missing container: %s", r)
	}
}
