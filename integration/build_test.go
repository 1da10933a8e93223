package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeContext makes a build context directory from name -> content.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDockerBuild drives the legacy builder with the docker CLI: the
// classic stream, the tag, RUN output in the image, then a rebuild that
// is all cache hits.
func TestDockerBuild(t *testing.T) {
	e := daemonEnv(t)
	tag := "built/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nLABEL built=1\nENV GREETING=hello\nCOPY a.txt /a.txt\n" +
			"RUN echo \"$GREETING\" > /greet && cat /a.txt\nCMD [\"cat\", \"/greet\"]\n",
		"a.txt":         "file a\n",
		"skip.log":      "ignored\n",
		".dockerignore": "*.log\n",
	})
	r := must(t, e.docker(t, "build", "-t", tag, dir))
	for _, want := range []string{"Step 1/6 : FROM busybox", " ---> Running in ", "file a\n", "Successfully built ", "Successfully tagged " + tag} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("build output lacks %q:\n%s", want, r.stdout)
		}
	}
	out := must(t, e.docker(t, "run", "--rm", tag)).stdout
	if out != "hello\n" {
		t.Fatalf("built image ran %q, want hello", out)
	}
	label := must(t, e.docker(t, "inspect", "-f", "{{.Config.Labels.built}}", tag)).stdout
	if strings.TrimSpace(label) != "1" {
		t.Fatalf("label built = %q", label)
	}
	r = must(t, e.docker(t, "build", "-t", tag, dir))
	if n := strings.Count(r.stdout, " ---> Using cache"); n < 4 {
		t.Fatalf("rebuild used the cache %d times, want 4+:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, "Running in") {
		t.Fatalf("rebuild ran a step again:\n%s", r.stdout)
	}
}

// TestBuildFailingRunExitCode checks that a failing RUN's code is the
// CLI's exit code, for docker and berth, and that a parse error is a 400.
func TestBuildFailingRunExitCode(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo before; exit 3\n"})
	r := e.docker(t, "build", dir)
	if r.code != 3 || !strings.Contains(r.stderr, "returned a non-zero code: 3") {
		t.Fatalf("docker build of a failing RUN: %s", r)
	}
	r = e.berth(t, "build", dir)
	if r.code != 3 {
		t.Fatalf("berth build of a failing RUN: %s", r)
	}
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nBOGUS x\n"})
	r = e.docker(t, "build", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "dockerfile parse error line 2: unknown instruction: BOGUS") {
		t.Fatalf("docker build of a bad Dockerfile: %s", r)
	}
}

// TestBerthBuildReproducible builds the hello example (FROM scratch, COPY
// hello) twice from clean with SOURCE_DATE_EPOCH and --no-cache: the same
// image ID both times, written by --iidfile, and the image runs.
func TestBerthBuildReproducible(t *testing.T) {
	e := daemonEnv(t)
	dir := t.TempDir()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "hello"), "./examples/hello")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the hello example: %v: %s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(root, "examples/hello/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "hello-built/" + uniq(t)
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	var ids []string
	for i := range 2 {
		iid := filepath.Join(t.TempDir(), "iid")
		must(t, e.berth(t, "build", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", tag, "--iidfile", iid, dir))
		b, err := os.ReadFile(iid)
		if err != nil {
			t.Fatalf("build %d wrote no iidfile: %v", i, err)
		}
		ids = append(ids, string(b))
	}
	if !strings.HasPrefix(ids[0], "sha256:") || ids[0] != ids[1] {
		t.Fatalf("two clean builds gave %q and %q", ids[0], ids[1])
	}
	r := must(t, e.berth(t, "run", "--rm", tag))
	if r.stdout == "" {
		t.Fatalf("built hello printed nothing: %s", r)
	}
	created := must(t, e.berth(t, "image", "inspect", "-f", "{{.Created}}", tag)).stdout
	if !strings.HasPrefix(created, "2023-11-14T22:13:20") {
		t.Fatalf("created = %q, want SOURCE_DATE_EPOCH", created)
	}
}

// TestBerthBuildMultiStage builds two stages with --target and COPY --from.
func TestBerthBuildMultiStage(t *testing.T) {
	e := daemonEnv(t)
	tag := "multi/" + uniq(t)
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE AS b\nARG MSG\nWORKDIR /work\nRUN echo \"$MSG\" > out\n" +
			"FROM busybox\nCOPY --from=b /work/out /final\nCMD [\"cat\", \"/final\"]\n",
	})
	must(t, e.berth(t, "build", "--build-arg", "MSG=from-stage", "-t", tag, dir))
	r := must(t, e.berth(t, "run", "--rm", tag))
	if r.stdout != "from-stage\n" {
		t.Fatalf("multi-stage image printed %q", r.stdout)
	}
	q := must(t, e.berth(t, "build", "-q", "--target", "b", dir)).stdout
	if !strings.HasPrefix(strings.TrimSpace(q), "sha256:") {
		t.Fatalf("build -q printed %q", q)
	}
}
