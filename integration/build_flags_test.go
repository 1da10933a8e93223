package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBerthBuildFlags: berth build's docker flags end to end — -f inside
// and outside the context, -t repeated, --label, --target, --build-arg
// without a value (taken from the environment), and a Dockerfile on
// stdin (-) with no context, and a whole context as a tar on stdin.
func TestBerthBuildFlags(t *testing.T) {
	e := daemonEnv(t)
	a, b := "flags/"+uniq(t)+":a", "flags/"+uniq(t)+":b"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", a, b) })
	dir := writeContext(t, map[string]string{
		"sub/Build.df": "FROM busybox AS one\nLABEL stage=one\nFROM busybox AS two\nARG FROM_ENV\nLABEL stage=two env=$FROM_ENV\nFROM busybox\nLABEL stage=last\n",
		"f.txt":        "f\n",
	})
	t.Setenv("FROM_ENV", "env-value")
	must(t, e.berth(t, "build", "-q", "-f", filepath.Join(dir, "sub/Build.df"), "-t", a, "-t", b,
		"--label", "extra=cli", "--target", "two", "--build-arg", "FROM_ENV", dir))
	for _, tag := range []string{a, b} {
		got := must(t, e.berth(t, "image", "inspect", "-f", "{{.Config.Labels.stage}} {{.Config.Labels.env}} {{.Config.Labels.extra}}", tag)).stdout
		if got != "two env-value cli\n" {
			t.Errorf("%s labels: %q, want the target stage's, the env build arg and --label", tag, got)
		}
	}
	// A Dockerfile outside the context directory.
	outside := filepath.Join(t.TempDir(), "Outside.df")
	if err := os.WriteFile(outside, []byte("FROM busybox\nCOPY f.txt /f.txt\nLABEL stage=outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, e.berth(t, "build", "-q", "-f", outside, "-t", a, dir))
	if got := must(t, e.berth(t, "run", "--rm", a, "cat", "/f.txt")).stdout; got != "f\n" {
		t.Errorf("image built with -f outside the context: /f.txt is %q", got)
	}
	// Dockerfile from stdin.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := e.run(ctx, "FROM busybox\nLABEL stage=stdin\n", e.bin, "build", "-q", "-t", b, "-")
	if r.code != 0 {
		t.Fatalf("build -: %s", r)
	}
	if got := must(t, e.berth(t, "image", "inspect", "-f", "{{.Config.Labels.stage}}", b)).stdout; got != "stdin\n" {
		t.Errorf("build - label: %q", got)
	}
	if got := strings.TrimSpace(r.stdout); !strings.HasPrefix(got, "sha256:") {
		t.Errorf("build -q - printed %q", got)
	}
	// A whole context as a tar on stdin, plain or gzip-compressed, with
	// -f naming the Dockerfile inside it.
	tarCtx := writeContext(t, map[string]string{"In.df": "FROM busybox\nCOPY f.txt /f.txt\n", "f.txt": "from the tar\n"})
	plain, err := exec.Command("tar", "-C", tarCtx, "-cf", "-", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	for name, body := range map[string][]byte{"tar": plain, "tar.gz": gz.Bytes()} {
		for _, bin := range []string{e.bin, dockerCLI(t)} {
			r := e.run(ctx, string(body), bin, "build", "-q", "-f", "In.df", "-t", a, "-")
			if r.code != 0 {
				t.Fatalf("%s build - < context.%s: %s", filepath.Base(bin), name, r)
			}
			if got := must(t, e.berth(t, "run", "--rm", a, "cat", "/f.txt")).stdout; got != "from the tar\n" {
				t.Errorf("%s build - < context.%s: /f.txt is %q", filepath.Base(bin), name, got)
			}
		}
	}
}
