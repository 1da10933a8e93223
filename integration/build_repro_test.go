package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildReproducibleFromClean builds a Dockerfile with ENV, COPY (a
// directory and a file) and RUN twice from clean — the image removed, the
// build cache pruned, every context file given a new mtime in between,
// the first build through berth's CLI and the second through the docker
// CLI (its own context tar) — with SOURCE_DATE_EPOCH: the same image ID.
func TestBuildReproducibleFromClean(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nARG SOURCE_DATE_EPOCH\nENV A=1 B=\"two words\"\nCOPY src/ /app/src/\nCOPY one.txt /app/\n" +
			"RUN mkdir /app/gen && echo built > /app/gen/out && cp /app/one.txt /app/gen/ && ln -s out /app/gen/link\n" +
			"WORKDIR /app\nCMD [\"cat\", \"/app/gen/out\"]\n",
		"src/a.go":     "package a\n",
		"src/sub/b.go": "package sub\n",
		"one.txt":      "one\n",
	})
	tag := "repro/" + uniq(t)
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	build := func(client string) string {
		iid := filepath.Join(t.TempDir(), "iid")
		r := buildWith(t, e, client, "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", tag, "--iidfile", iid, dir)
		if strings.Contains(r.stdout, "Using cache") {
			t.Fatalf("%s build after the clean-up used the cache:\n%s", client, r.stdout)
		}
		id, err := os.ReadFile(iid)
		if err != nil || !strings.HasPrefix(string(id), "sha256:") {
			t.Fatalf("%s build wrote no image ID: %v %q", client, err, id)
		}
		return string(id)
	}
	clean := func(id string) {
		must(t, e.berth(t, "rmi", "-f", tag))
		must(t, e.berth(t, "builder", "prune", "-af"))
		if r := e.berth(t, "image", "inspect", id); r.code == 0 {
			t.Fatalf("image %s survived the clean-up", id)
		}
	}
	first := build("berth")
	clean(first)
	later := time.Now().Add(-48 * time.Hour)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, later, later) })
	second := build("docker")
	if first != second {
		t.Fatalf("two clean builds gave %s and %s", first, second)
	}
	out := must(t, e.berth(t, "run", "--rm", tag)).stdout
	if out != "built\n" {
		t.Fatalf("the image printed %q", out)
	}
}
