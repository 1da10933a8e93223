package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth/internal/fixture"
)

// These scenarios manage containers and images: prune, update, import, load.

func TestContainerPrune(t *testing.T) {
	e := daemonEnv(t)
	label := "prune-" + uniq(t)
	stopped1, stopped2, running, other := uniq(t)+"-s1", uniq(t)+"-s2", uniq(t)+"-run", uniq(t)+"-other"
	t.Cleanup(func() { e.docker(t, "rm", "-f", stopped1, stopped2, running, other) })
	id1 := strings.TrimSpace(must(t, e.docker(t, "create", "--name", stopped1, "-l", label, "busybox", "true")).stdout)
	must(t, e.docker(t, "run", "--name", stopped2, "-l", label, "busybox", "sh", "-c", "head -c 100000 /dev/zero > /blob"))
	id2 := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", stopped2)).stdout)
	must(t, e.docker(t, "run", "-d", "--name", running, "-l", label, "busybox", "sleep", "300"))
	must(t, e.docker(t, "create", "--name", other, "busybox", "true"))

	r := must(t, e.docker(t, "container", "prune", "-f", "--filter", "label="+label))
	got := regexp.MustCompile(`[0-9a-f]{64}`).FindAllString(r.stdout, -1)
	if len(got) != 2 || !strings.Contains(r.stdout, id1) || !strings.Contains(r.stdout, id2) || !strings.HasPrefix(r.stdout, "Deleted Containers:\n") {
		t.Fatalf("prune output: %q", r.stdout)
	}
	if m := regexp.MustCompile(`Total reclaimed space: ([0-9.]+)kB`).FindStringSubmatch(r.stdout); m == nil {
		t.Errorf("prune must report the ~100kB the removed writable layer held: %q", r.stdout)
	}
	for _, n := range []string{stopped1, stopped2} {
		if r := e.docker(t, "inspect", n); r.code == 0 {
			t.Fatalf("%s survived prune", n)
		}
	}
	// The running container and the one outside the filter stay.
	for _, n := range []string{running, other} {
		must(t, e.docker(t, "inspect", n))
	}
	// Nothing left to prune under that label.
	if r := must(t, e.docker(t, "container", "prune", "-f", "--filter", "label="+label)); r.stdout != "Total reclaimed space: 0B\n" {
		t.Fatalf("second prune: %q", r.stdout)
	}
}

func TestContainerUpdateMemory(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "-d", "--name", name, "--memory", "32m", "busybox", "sleep", "300"))
	limit := func() string {
		return strings.TrimSpace(must(t, e.docker(t, "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")).stdout)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("no cgroup v1 memory controller on this host; the test reads memory.limit_in_bytes")
	}
	if l := limit(); l != "33554432" {
		t.Fatalf("limit before update: %s", l)
	}
	if r := must(t, e.docker(t, "update", "--memory", "64m", "--memory-swap", "128m", name)); r.stdout != name+"\n" {
		t.Fatalf("update printed %q", r.stdout)
	}
	if l := limit(); l != "67108864" {
		t.Fatalf("limit after update: %s, want 67108864", l)
	}
	if st := must(t, e.docker(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", name)).stdout; st != "67108864 134217728\n" {
		t.Fatalf("inspect after update: %q", st)
	}
	// The new limit survives a restart of the container.
	must(t, e.docker(t, "restart", "-t", "1", name))
	if l := limit(); l != "67108864" {
		t.Fatalf("limit after restart: %s", l)
	}
	if r := e.docker(t, "update", "--memory", "1k", name); r.code == 0 {
		t.Fatalf("update below the 6MB minimum must fail: %s", r)
	}
	if r := e.docker(t, "update", "--memory", "64m", "no-such-container-upd"); r.code == 0 || !strings.Contains(r.stderr, "no-such-container-upd") {
		t.Fatalf("update of a missing container: %s", r)
	}
}

func TestImportWithChanges(t *testing.T) {
	e := daemonEnv(t)
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("import needs a static busybox at /bin/busybox: %v", err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "root.tar")
	if out, err := exec.Command("tar", "-C", src, "-cf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	ref := uniq(t) + ":v1"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })
	r := must(t, e.docker(t, "import", "-c", `CMD ["/bin/busybox","sh","-c","echo imported $GREETING from $PWD"]`,
		"-c", "ENV GREETING=hello", "-c", "WORKDIR /work", "-m", "from a tar", tarPath, ref))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.stdout) {
		t.Fatalf("import printed %q", r.stdout)
	}
	if r := must(t, e.docker(t, "run", "--rm", ref)); r.stdout != "imported hello from /work\n" {
		t.Fatalf("run of the imported image: %q", r.stdout)
	}
	insp := must(t, e.docker(t, "image", "inspect", "-f", "{{json .Config.Cmd}} {{.Config.WorkingDir}} {{len .RootFS.Layers}}", ref)).stdout
	if insp != `["/bin/busybox","sh","-c","echo imported $GREETING from $PWD"] /work 1`+"\n" {
		t.Fatalf("image inspect: %q", insp)
	}
	if h := must(t, e.docker(t, "history", "--format", "{{.Comment}}", ref)).stdout; h != "from a tar\n" {
		t.Fatalf("import -m must be the history comment: %q", h)
	}
	// From stdin too.
	ref2 := uniq(t) + ":stdin"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref2) })
	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	must(t, e.dockerIn(t, string(data), "import", "-c", "ENTRYPOINT [\"/bin/busybox\", \"echo\"]", "-", ref2))
	if r := must(t, e.docker(t, "run", "--rm", ref2, "via", "stdin")); r.stdout != "via stdin\n" {
		t.Fatalf("run of the image imported from stdin: %q", r.stdout)
	}
	if r := e.docker(t, "import", "-c", "BOGUS instruction", tarPath, uniq(t)+":bad"); r.code == 0 {
		t.Fatalf("import with an invalid change must fail: %s", r)
	}
}

func TestLoadOCILayout(t *testing.T) {
	e := daemonEnv(t)
	ref := "ocibox-" + uniq(t) + ":v1"
	var buf bytes.Buffer
	if err := fixture.OCILayout(&buf, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })
	r := must(t, e.dockerIn(t, buf.String(), "load"))
	if r.stdout != "Loaded image: "+ref+"\n" {
		t.Fatalf("load of an OCI layout: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "run", "--rm", ref, "echo", "from oci")); r.stdout != "from oci\n" {
		t.Fatalf("run of the OCI-loaded image: %q", r.stdout)
	}
	if st := must(t, e.docker(t, "image", "inspect", "-f", "{{json .RepoTags}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}", ref)).stdout; !strings.Contains(st, `"`+ref+`"] linux/`) || !strings.HasSuffix(st, " 1\n") {
		t.Fatalf("image inspect of the OCI-loaded image: %q", st)
	}
	// Load is idempotent.
	if r := must(t, e.dockerIn(t, buf.String(), "load", "-q")); r.stdout != "Loaded image: "+ref+"\n" {
		t.Fatalf("second load: %q", r.stdout)
	}
}
