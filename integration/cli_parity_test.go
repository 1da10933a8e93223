package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// These scenarios run the same command line through berth's CLI and the
// docker CLI 28.2.2 against the same daemon, and require the same exit code
// and the same output (docker's binary name replaced by berth's).

// parity runs args with both CLIs and compares stdout, stderr and the code.
func parity(t *testing.T, e *env, stdin string, args ...string) result {
	t.Helper()
	d := e.dockerIn(t, stdin, args...)
	b := e.berthIn(t, stdin, args...)
	want := result{
		stdout: strings.ReplaceAll(d.stdout, "docker", "berth"),
		stderr: strings.ReplaceAll(d.stderr, "docker", "berth"),
		code:   d.code,
	}
	if b.code != want.code || b.stdout != want.stdout || b.stderr != want.stderr {
		t.Errorf("berth %s differs from docker:\nberth:  %s\ndocker: %s", strings.Join(args, " "), b, want)
	}
	return b
}

// parityLines is parity for commands whose output other tests can add
// lines to: only the lines keep selects are compared, and there must be some.
func parityLines(t *testing.T, e *env, keep func(string) bool, args ...string) {
	t.Helper()
	sel := func(r result) string {
		var out []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if keep(l) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	d, b := e.docker(t, args...), e.berth(t, args...)
	if d.code != 0 || b.code != 0 || sel(d) == "" || sel(b) != sel(d) {
		t.Errorf("berth %s differs from docker:\nberth:  %s\ndocker: %s", strings.Join(args, " "), b, d)
	}
}

func (e *env) berthIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	if stdin == "" {
		return e.berth(t, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.run(ctx, stdin, e.bin, args...)
}

func TestCLIParityRun(t *testing.T) {
	e := daemonEnv(t)
	dockerCLI(t)
	parity(t, e, "", "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	parity(t, e, "line1\nline2\n", "run", "-i", "--rm", "busybox", "cat")
	parity(t, e, "", "run", "--rm", "-e", "A=b", "-w", "/tmp", "busybox", "sh", "-c", "echo $A; pwd")
	// Without --rm: with it, docker waits for the daemon to remove the
	// container after the failed start (wait?condition=removed).
	for cli, run := range map[string]func(*testing.T, ...string) result{"docker": e.docker, "berth": e.berth} {
		name := uniq(t) + "-" + cli
		r := run(t, "run", "--name", name, "busybox", "/no/such/binary")
		e.berth(t, "rm", "-f", name)
		if r.code != 127 || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("%s run of a missing binary: %s", cli, r)
		}
	}
	parity(t, e, "", "run", "--rm", "--pull=never", "nonexistent-image-xyz:v9")
}

func TestCLIParityClientSideErrors(t *testing.T) {
	e := daemonEnv(t)
	dockerCLI(t)
	parity(t, e, "", "run", "--memory", "foo", "busybox", "true")
	parity(t, e, "", "run", "--cpus", "abc", "busybox", "true")
	parity(t, e, "", "run", "-p", "99999:80", "busybox", "true")
	parity(t, e, "", "run")
	parity(t, e, "", "rm")
	parity(t, e, "", "ps", "--bogus")
}

// twin is a container created twice, once for each CLI, so that commands
// that change state can be compared: outputs are compared with each twin's
// name and ID replaced by placeholders.
type twin struct{ dName, dID, bName, bID string }

func newTwin(t *testing.T, e *env, args ...string) twin {
	t.Helper()
	var tw twin
	for i, name := range []string{uniq(t) + "-d", uniq(t) + "-b"} {
		r := e.berth(t, append([]string{"run", "-d", "--name", name}, args...)...)
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || len(id) != 64 {
			t.Fatalf("berth run -d: %s", r)
		}
		t.Cleanup(func() { e.berth(t, "rm", "-f", name) })
		if i == 0 {
			tw.dName, tw.dID = name, id
		} else {
			tw.bName, tw.bID = name, id
		}
	}
	return tw
}

// parityTwin runs args (with "{}" standing for the container) through
// docker on one twin and berth on the other.
func parityTwin(t *testing.T, e *env, tw twin, args ...string) {
	t.Helper()
	sub := func(name string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "{}", name)
		}
		return out
	}
	norm := func(s, name, id string) string {
		s = strings.ReplaceAll(s, id, "<ID>")
		s = strings.ReplaceAll(s, id[:12], "<ID12>")
		return strings.ReplaceAll(s, name, "<NAME>")
	}
	d := e.docker(t, sub(tw.dName)...)
	b := e.berth(t, sub(tw.bName)...)
	want := result{
		stdout: strings.ReplaceAll(norm(d.stdout, tw.dName, tw.dID), "docker", "berth"),
		stderr: strings.ReplaceAll(norm(d.stderr, tw.dName, tw.dID), "docker", "berth"),
		code:   d.code,
	}
	got := result{norm(b.stdout, tw.bName, tw.bID), norm(b.stderr, tw.bName, tw.bID), b.code}
	if got != want {
		t.Errorf("berth %s differs from docker:\nberth:  %s\ndocker: %s", strings.Join(args, " "), got, want)
	}
}

func TestCLIParityDetachedContainer(t *testing.T) {
	e := daemonEnv(t)
	dockerCLI(t)
	tw := newTwin(t, e, "-l", "parity=1", "busybox", "sh", "-c", "echo started; exec sleep 300")
	for _, n := range []string{tw.dName, tw.bName} {
		waitFor(t, func() bool { return e.berth(t, "logs", n).stdout == "started\n" })
	}
	// Read-only commands on the same container.
	parity(t, e, "", "ps", "--filter", "name="+tw.bName, "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Labels}} {{.State}}")
	parity(t, e, "", "ps", "-a", "-q", "--no-trunc", "--filter", "label=parity=1")
	parity(t, e, "", "inspect", "-f", "{{.Name}} {{.State.Running}} {{.Config.Cmd}} {{json .Config.Labels}}", tw.bName)
	parity(t, e, "", "container", "inspect", "--format", "{{.Config.Image}}", tw.bName)
	parity(t, e, "", "logs", tw.bName)
	parity(t, e, "", "logs", "--tail", "1", tw.bName)
	parity(t, e, "", "port", tw.bName)
	// State changes, each CLI on its own twin.
	for _, args := range [][]string{
		{"pause", "{}"},
		{"pause", "{}"}, // already paused
		{"unpause", "{}"},
		{"stop", "-t", "1", "{}"},
		{"stop", "{}"}, // 304: prints the name, exit 0
		{"wait", "{}"},
		{"kill", "{}"}, // 409: not running
		{"start", "{}"},
		{"rm", "{}"}, // 409: running
		{"rm", "-f", "{}"},
		{"rm", "{}"}, // 404
		{"inspect", "{}"},
	} {
		parityTwin(t, e, tw, args...)
	}
}

func TestCLIParityImages(t *testing.T) {
	e := daemonEnv(t)
	dockerCLI(t)
	// Only busybox's own row: the image also carries digest-only references
	// that tests running in parallel push, and docker's CLI prints those in
	// Go map order.
	parityLines(t, e, func(l string) bool { return strings.HasPrefix(l, "busybox ") },
		"images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}", "busybox")
	parity(t, e, "", "image", "ls", "-q", "busybox")
	parity(t, e, "", "image", "inspect", "-f", "{{.Id}} {{.Os}}", "busybox")
	parity(t, e, "", "history", "--format", "{{.ID}} {{.Size}} {{.Comment}}", "busybox")
	tag := uniq(t) + ":v1"
	for _, cli := range []func(*testing.T, ...string) result{e.docker, e.berth} {
		if r := cli(t, "tag", "busybox", tag); r.code != 0 || r.stdout != "" {
			t.Fatalf("tag: %s", r)
		}
		if r := cli(t, "rmi", tag); r.code != 0 || r.stdout != "Untagged: "+tag+"\n" {
			t.Fatalf("rmi: %s", r)
		}
	}
	parity(t, e, "", "rmi", tag) // 404
	parity(t, e, "", "tag", "nonexist:latest", "foo:bar")
	parity(t, e, "", "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
}
