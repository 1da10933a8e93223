package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBerthCLIVerbs drives the verbs the other tests reach mostly through the
// docker CLI, through berth's own CLI, asserting outputs and exit codes.
func TestBerthCLIVerbs(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.berth(t, "rm", "-f", name, name+"-2", name+"-att") })

	id := strings.TrimSpace(must(t, e.berth(t, "create", "--name", name, "-l", "verbs=1", "busybox", "sh", "-c", "echo ready; exec sleep 300")).stdout)
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if r := must(t, e.berth(t, "start", name)); strings.TrimSpace(r.stdout) != name {
		t.Fatalf("start printed %q", r.stdout)
	}
	if r := must(t, e.berth(t, "exec", name, "sh", "-c", "echo $((6*7))")); r.stdout != "42\n" {
		t.Fatalf("exec: %q", r.stdout)
	}
	if r := e.berth(t, "exec", name, "sh", "-c", "exit 5"); r.code != 5 {
		t.Fatalf("exec exit code: %s", r)
	}
	if r := must(t, e.berth(t, "top", name)); !strings.Contains(r.stdout, "PID") || !strings.Contains(r.stdout, "sleep 300") {
		t.Fatalf("top: %q", r.stdout)
	}
	st := must(t, e.berth(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name)).stdout
	if !strings.HasPrefix(st, name+" ") {
		t.Fatalf("stats: %q", st)
	}
	must(t, e.berth(t, "update", "--memory", "64m", "--memory-swap", "128m", name))
	if r := must(t, e.berth(t, "inspect", "-f", "{{.HostConfig.Memory}}", name)); strings.TrimSpace(r.stdout) != strconv.Itoa(64<<20) {
		t.Fatalf("update --memory: %q", r.stdout)
	}
	must(t, e.berth(t, "pause", name))
	if r := must(t, e.berth(t, "ps", "--filter", "name="+name, "--format", "{{.Status}}")); !strings.Contains(r.stdout, "(Paused)") {
		t.Fatalf("ps after pause: %q", r.stdout)
	}
	must(t, e.berth(t, "unpause", name))
	must(t, e.berth(t, "rename", name, name+"-2"))
	must(t, e.berth(t, "restart", "-t", "0", name+"-2"))
	if r := must(t, e.berth(t, "inspect", "-f", "{{.State.Running}} {{.Name}}", name+"-2")); r.stdout != "true /"+name+"-2\n" {
		t.Fatalf("after restart/rename: %q", r.stdout)
	}
	must(t, e.berth(t, "kill", "-s", "KILL", name+"-2"))
	if r := must(t, e.berth(t, "wait", name+"-2")); r.stdout != "137\n" {
		t.Fatalf("wait: %q", r.stdout)
	}

	// attach to a running container and get its output until it exits
	must(t, e.berth(t, "run", "-d", "--name", name+"-att", "busybox", "sh", "-c", "sleep 1; echo from-attach; exit 4"))
	if r := e.berth(t, "attach", "--no-stdin", name+"-att"); r.code != 4 || !strings.Contains(r.stdout, "from-attach") {
		t.Fatalf("attach: %s", r)
	}

	// events over the window of this test
	since := time.Now().Add(-2 * time.Minute).Unix()
	ev := must(t, e.berth(t, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+name+"-att", "--format", "{{.Action}}")).stdout
	for _, want := range []string{"create", "start", "die"} {
		if !strings.Contains(ev, want) {
			t.Fatalf("events lack %q: %q", want, ev)
		}
	}

	if r := must(t, e.berth(t, "version", "--format", "{{.Server.APIVersion}}")); strings.TrimSpace(r.stdout) != "1.47" {
		t.Fatalf("version: %q", r.stdout)
	}
	if r := must(t, e.berth(t, "info", "--format", "{{.Driver}}")); strings.TrimSpace(r.stdout) != "overlay2" {
		t.Fatalf("info: %q", r.stdout)
	}
	if r := must(t, e.berth(t, "system", "df")); !strings.HasPrefix(r.stdout, "TYPE") || !strings.Contains(r.stdout, "Images") {
		t.Fatalf("system df: %q", r.stdout)
	}
}

func TestBerthCLIImagesAndPrune(t *testing.T) {
	e := daemonEnv(t)
	ref := "verbs/" + uniq(t) + ":v1"
	must(t, e.berth(t, "tag", "busybox", ref))
	tar := filepath.Join(t.TempDir(), "img.tar")
	must(t, e.berth(t, "save", "-o", tar, ref))
	if st, err := os.Stat(tar); err != nil || st.Size() < 100000 {
		t.Fatalf("save: %v %v", st, err)
	}
	if r := must(t, e.berth(t, "rmi", ref)); !strings.Contains(r.stdout, "Untagged: "+ref) {
		t.Fatalf("rmi: %q", r.stdout)
	}
	if r := must(t, e.berth(t, "load", "-i", tar)); !strings.Contains(r.stdout, "Loaded image: "+ref) {
		t.Fatalf("load: %q", r.stdout)
	}
	if r := must(t, e.berth(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")); !strings.Contains(r.stdout, ref) {
		t.Fatalf("image ls: %q", r.stdout)
	}
	if r := must(t, e.berth(t, "history", "--format", "{{.CreatedBy}}", ref)); !strings.Contains(r.stdout, "busybox") {
		t.Fatalf("history: %q", r.stdout)
	}
	must(t, e.berth(t, "image", "rm", ref))

	// container prune removes stopped containers only
	stopped, running := uniq(t)+"-s", uniq(t)+"-r"
	t.Cleanup(func() { e.berth(t, "rm", "-f", stopped, running) })
	must(t, e.berth(t, "run", "--name", stopped, "busybox", "true"))
	must(t, e.berth(t, "run", "-d", "--name", running, "busybox", "sleep", "300"))
	r := must(t, e.berth(t, "container", "prune", "-f"))
	if !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Fatalf("container prune: %q", r.stdout)
	}
	if r := e.berth(t, "inspect", stopped); r.code == 0 {
		t.Fatalf("stopped container survived prune")
	}
	must(t, e.berth(t, "inspect", running))
	if r := must(t, e.berth(t, "image", "prune", "-f")); !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Fatalf("image prune: %q", r.stdout)
	}
	must(t, e.berth(t, "image", "inspect", "busybox")) // in use and tagged: kept
}
