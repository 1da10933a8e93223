package integration

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth/internal/fixture/savedimage"
)

// TestBuildRunMounts checks RUN --mount on the real engine: a cache
// mount keeps its contents from one build to the next (even with
// --no-cache) without entering the image, a tmpfs mount is a tmpfs, and
// a bind of the context is readable.
func TestBuildRunMounts(t *testing.T) {
	e := daemonEnv(t)
	tag := "mounts/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", tag) })
	cacheID := uniq(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\n" +
			"RUN --mount=type=cache,id=" + cacheID + ",target=/cache --mount=type=tmpfs,target=/scratch --mount=type=bind,source=data,target=/data " +
			"echo run >> /cache/count && wc -l < /cache/count > /count && cat /data/x > /fromctx && " +
			"grep -q ' /scratch tmpfs ' /proc/mounts && echo yes > /tmpfs\n" +
			"CMD [\"sh\", \"-c\", \"cat /count /fromctx /tmpfs; find /cache /scratch -type f 2>/dev/null | wc -l\"]\n",
		"data/x": "ctx-data\n",
	})
	for i, want := range []string{"1\nctx-data\nyes\n0\n", "2\nctx-data\nyes\n0\n"} {
		must(t, e.docker(t, "build", "--no-cache", "-t", tag, dir))
		got := must(t, e.docker(t, "run", "--rm", tag)).stdout
		got = strings.Join(strings.Fields(got), "\n") + "\n"
		if got != want {
			t.Fatalf("build %d: image says %q, want %q", i+1, got, want)
		}
	}
}

// TestBuildSecret: berth build --secret reaches RUN --mount=type=secret
// and nothing of it is in the saved image (layers nor config), nor in
// the context COPY sees.
func TestBuildSecret(t *testing.T) {
	e := daemonEnv(t)
	tag := "secret/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	const value = "s3cr3t-V4LUE-9f2c"
	// The Dockerfile holds only the hash: its text is in the history.
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(value)))
	secretFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secretFile, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\n" +
			"RUN --mount=type=secret,id=tok,required sha256sum /run/secrets/tok | grep -q " + sum + " && echo secret-seen > /proof\n" +
			"COPY . /ctx/\n",
		"a.txt": "a\n",
	})
	must(t, e.berth(t, "build", "--secret", "id=tok,src="+secretFile, "-t", tag, dir))
	out := must(t, e.docker(t, "run", "--rm", tag, "sh", "-c", "cat /proof; ls -A /ctx")).stdout
	if out != "secret-seen\nDockerfile\na.txt\n" {
		t.Fatalf("image says %q: want the proof and a context without the secrets", out)
	}
	saved := filepath.Join(t.TempDir(), "img.tar")
	must(t, e.docker(t, "save", "-o", saved, tag))
	data := savedContents(t, saved)
	if !strings.Contains(data, "secret-seen\n") {
		t.Fatal("the proof file is not in the unpacked image: the search below would prove nothing")
	}
	if strings.Contains(data, value) {
		t.Fatal("the secret's value is in the saved image")
	}
	// Without --secret a required secret fails the build.
	if r := e.berth(t, "build", "--no-cache", dir); r.code == 0 || !strings.Contains(r.stderr+r.stdout, "secret tok not provided") {
		t.Fatalf("build without the secret: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// savedContents is everything in a docker save tar, with each member
// that is gzip-compressed (the layers) decompressed.
func savedContents(t *testing.T, file string) string {
	t.Helper()
	img, err := savedimage.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for name, raw := range img.Members {
		plain, err := savedimage.Decompress(raw)
		if err != nil {
			t.Fatalf("%s: %s: %v", file, name, err)
		}
		all.Write(plain)
	}
	return all.String()
}

// TestBuildExplain: berth build --explain says which input made a step
// miss the cache; the control directory never reaches the context.
func TestBuildExplain(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN ls -A / | grep -c berth-build || true\n",
		"a.txt":      "one\n",
	})
	// The first build does not ask for --explain: every build records its
	// steps' inputs, so the next one can still name what changed.
	must(t, e.berth(t, "build", dir))
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := must(t, e.berth(t, "build", "--explain", dir))
	if !regexp.MustCompile(`cache miss: file /a\.txt sha256:[0-9a-f]{64} changed`).MatchString(r.stdout) {
		t.Fatalf("explain output lacks the changed file:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "cache miss: base sha256:") {
		t.Fatalf("explain output lacks the RUN's changed base:\n%s", r.stdout)
	}
}
