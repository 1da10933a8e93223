package integration

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth/internal/build/buildtest"
)

// TestBuildHeredocs runs heredoc RUN and COPY steps on the real engine:
// a plain script, a document fed to an interpreter named on the line, a
// shebang script, several documents on one line, and COPY <<EOF with
// --chmod and variable expansion.
func TestBuildHeredocs(t *testing.T) {
	e := daemonEnv(t)
	tag := "heredoc/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nARG WHO=world\n" +
			"RUN <<EOF\necho \"hello $WHO\" > /h1\necho line2 >> /h1\nEOF\n" +
			"RUN <<EOF sh\necho via-sh > /h2\nEOF\n" +
			"RUN <<'EOF'\n#!/bin/sh\necho \"shebang $0\" > /h3\nEOF\n" +
			"RUN <<-EOF\n\techo tabs > /h6\n\tEOF\n" +
			"RUN cat <<A > /h5 && cat <<'B' >> /h5\na $WHO\nA\nb $WHO\nB\n" +
			"COPY --chmod=700 <<EOF /h4\nv=$WHO\nEOF\n",
	})
	must(t, e.berth(t, "build", "-t", tag, dir))
	got := must(t, e.berth(t, "run", "--rm", tag, "sh", "-c", "cat /h1 /h2 /h3 /h5 /h6 /h4; stat -c %a /h4")).stdout
	want := "hello world\nline2\nvia-sh\nshebang /dev/pipes/EOF\na world\nb $WHO\ntabs\nv=world\n700\n"
	if got != want {
		t.Fatalf("heredoc image says %q, want %q", got, want)
	}
	// The document is part of the cache key: editing it reruns the step.
	df := filepath.Join(dir, "Dockerfile")
	raw, _ := os.ReadFile(df)
	if err := os.WriteFile(df, []byte(strings.Replace(string(raw), "echo line2", "echo line3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, e.berth(t, "build", "-t", tag, dir))
	if got := must(t, e.berth(t, "run", "--rm", tag, "cat", "/h1")).stdout; got != "hello world\nline3\n" {
		t.Fatalf("after editing the heredoc /h1 is %q", got)
	}
}

// TestBuildContextBerthDir: a context's own .berth-build directory is
// copied like any other, through the docker CLI and through berth build
// with --explain and --secret (which now travel in request headers).
func TestBuildContextBerthDir(t *testing.T) {
	e := daemonEnv(t)
	tag := "berthdir/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	secretFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secretFile, []byte("hidden"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile":             "FROM busybox\nCOPY . /ctx/\nRUN --mount=type=secret,id=tok (grep -q hidden /run/secrets/tok && echo yes || echo no) > /secret-seen\n",
		".berth-build/explain":   "mine\n",
		".berth-build/secrets/x": "also mine\n",
	})
	for _, cli := range []string{"docker", "berth"} {
		var r result
		if cli == "docker" {
			r = must(t, e.docker(t, "build", "-t", tag, dir))
		} else {
			r = must(t, e.berth(t, "build", "--no-cache", "--explain", "--secret", "id=tok,src="+secretFile, "-t", tag, dir))
			if !strings.Contains(r.stdout, "cache miss: --no-cache") {
				t.Fatalf("berth build --explain said nothing:\n%s", r.stdout)
			}
		}
		got := must(t, e.berth(t, "run", "--rm", tag, "sh", "-c", "cat /ctx/.berth-build/explain /ctx/.berth-build/secrets/x /secret-seen")).stdout
		seen := map[string]string{"docker": "no\n", "berth": "yes\n"}[cli]
		if got != "mine\nalso mine\n"+seen {
			t.Fatalf("%s build: the context's .berth-build reads %q", cli, got)
		}
	}
}

// TestBuilderPrune: berth builder prune and docker builder prune report
// the space really freed, the next build misses the cache, and system df
// counts the build cache.
func TestBuilderPrune(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		// A unique RUN, so no other test's cache is involved; 3 MB of layer.
		"Dockerfile": "FROM busybox\nRUN echo " + uniq(t) + " > /id && head -c 3000000 /dev/urandom > /big\nRUN echo second > /second\n",
	})
	must(t, e.berth(t, "build", dir))
	df := must(t, e.docker(t, "system", "df")).stdout
	if !regexp.MustCompile(`(?m)^Build Cache\s+[1-9]`).MatchString(df) {
		t.Fatalf("system df shows no build cache:\n%s", df)
	}
	r := must(t, e.berth(t, "builder", "prune", "-f"))
	m := regexp.MustCompile(`Total reclaimed space: ([0-9.]+)MB`).FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(r.stdout, "Deleted build cache objects:") {
		t.Fatalf("berth builder prune reclaimed no MB:\n%s", r.stdout)
	}
	if mb, _ := strconv.ParseFloat(m[1], 64); mb < 3 {
		t.Fatalf("berth builder prune reclaimed %s MB, want >= 3 (the RUN layer)", m[1])
	}
	r = must(t, e.berth(t, "build", dir))
	if strings.Contains(r.stdout, "Using cache") {
		t.Fatalf("the build after prune used the cache:\n%s", r.stdout)
	}
	// The docker CLI's own verb, through POST /build/prune.
	r = must(t, e.docker(t, "builder", "prune", "-a", "-f"))
	m = regexp.MustCompile(`Total reclaimed space: ([0-9.]+)MB`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("docker builder prune reclaimed no MB:\n%s%s", r.stdout, r.stderr)
	}
	r = must(t, e.berth(t, "build", dir))
	if strings.Contains(r.stdout, "Using cache") {
		t.Fatalf("the build after docker builder prune used the cache:\n%s", r.stdout)
	}
	must(t, e.berth(t, "builder", "prune", "-a", "-f"))
}

// TestBuildReproducibleRun: with SOURCE_DATE_EPOCH two clean builds of a
// Dockerfile with RUN steps (files, directories, a deletion) give the
// same image digest.
func TestBuildReproducibleRun(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN mkdir -p /app/sub && echo hi > /app/sub/f && ln -s sub/f /app/link && rm -f /bin/vi\n" +
			"RUN echo more >> /app/sub/f && touch /etc/marker\nCOPY a.txt /app/\n",
		"a.txt": "a\n",
	})
	var ids []string
	for i := range 2 {
		iid := filepath.Join(t.TempDir(), "iid")
		must(t, e.berth(t, "build", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "--iidfile", iid, dir))
		b, err := os.ReadFile(iid)
		if err != nil {
			t.Fatalf("build %d wrote no iidfile: %v", i, err)
		}
		ids = append(ids, string(b))
		if i == 0 {
			// A second apart at least, so unclamped times would differ.
			must(t, e.berth(t, "run", "--rm", string(b), "sleep", "1"))
		}
	}
	t.Cleanup(func() { e.berth(t, "rmi", "-f", ids[0]) })
	if !strings.HasPrefix(ids[0], "sha256:") || ids[0] != ids[1] {
		t.Fatalf("two clean builds with RUN steps gave %q and %q", ids[0], ids[1])
	}
	got := must(t, e.berth(t, "run", "--rm", ids[0], "sh", "-c", "cat /app/link; stat -c %Y /app/sub/f; test -e /bin/vi || echo vi-gone")).stdout
	if got != "hi\nmore\n1700000000\nvi-gone\n" {
		t.Fatalf("reproducible image says %q", got)
	}
}

// TestBuildAddURL: ADD of an http URL from a loopback server keeps the
// server's Last-Modified as mtime and gets docker's mode 0600.
func TestBuildAddURL(t *testing.T) {
	e := daemonEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pkg/tool.sh" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
		io.WriteString(w, "echo from-url\n")
	}))
	t.Cleanup(srv.Close)
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("echo from-url\n")))
	tag := "addurl/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nADD --checksum=" + sum + " " + srv.URL + "/pkg/tool.sh /opt/\nADD " + srv.URL + "/pkg/tool.sh /named.sh\n",
	})
	must(t, e.docker(t, "build", "-t", tag, dir))
	got := must(t, e.berth(t, "run", "--rm", tag, "sh", "-c", "stat -c '%a %Y %s' /opt/tool.sh /named.sh; sh /opt/tool.sh")).stdout
	if got != "600 1445412480 14\n600 1445412480 14\nfrom-url\n" {
		t.Fatalf("ADD URL image says %q", got)
	}
	bad := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nADD --checksum=sha256:" + strings.Repeat("1", 64) + " " + srv.URL + "/pkg/tool.sh /opt/\n",
	})
	if r := e.berth(t, "build", bad); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "digest mismatch") {
		t.Fatalf("a wrong --checksum built: %s", r)
	}
}

// TestBuildPlatform: FROM --platform=$BUILDPLATFORM works and the
// platform ARGs reach RUN; a foreign platform is refused clearly.
func TestBuildPlatform(t *testing.T) {
	e := daemonEnv(t)
	tag := "platform/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETOS TARGETARCH\nRUN echo $TARGETOS/$TARGETARCH > /arch\n",
	})
	must(t, e.docker(t, "build", "-t", tag, dir))
	if got := must(t, e.berth(t, "run", "--rm", tag, "cat", "/arch")).stdout; got != "linux/"+goruntime.GOARCH+"\n" {
		t.Fatalf("TARGETOS/TARGETARCH = %q", got)
	}
	// docker build --platform reaches the API as platform=.
	must(t, e.docker(t, "build", "--platform", "linux/"+goruntime.GOARCH, "-t", tag, dir))
	if r := e.docker(t, "build", "--platform", "linux/s390x", dir); r.code == 0 || !strings.Contains(r.stderr, "containers only") {
		t.Fatalf("docker build --platform linux/s390x: %s", r)
	}
	if r := e.berth(t, "build", "--platform", "linux/s390x", dir); r.code == 0 || !strings.Contains(r.stderr, "containers only") {
		t.Fatalf("berth build --platform linux/s390x: %s", r)
	}
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM --platform=linux/s390x busybox\nRUN true\n"})
	if r := e.berth(t, "build", bad); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "runs linux/"+goruntime.GOARCH+" containers only") {
		t.Fatalf("a foreign platform built: %s", r)
	}
}

// TestBuildParallelStages: two independent stages of two seconds each
// build at the same time (the whole build well under their sum), an
// unneeded stage is skipped, and the output keeps Dockerfile order.
func TestBuildParallelStages(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox AS a\nRUN sleep 2 && echo " + uniq(t) + " > /a\n" +
			"FROM busybox AS unused\nRUN echo never > /never\n" +
			"FROM busybox AS b\nRUN sleep 2 && echo b > /b\n" +
			"FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
	})
	start := time.Now()
	r := must(t, e.berth(t, "build", "--no-cache", dir))
	took := time.Since(start)
	t.Logf("2 independent 2 s stages built in %v", took)
	if strings.Contains(r.stdout, "never") {
		t.Fatalf("the unneeded stage was built:\n%s", r.stdout)
	}
	if i, j := strings.Index(r.stdout, "Step 1/7 : FROM busybox AS a"), strings.Index(r.stdout, "Step 3/7 : FROM busybox AS b"); i < 0 || j < i {
		t.Fatalf("output not in stage order:\n%s", r.stdout)
	}
	if took > 3500*time.Millisecond {
		t.Fatalf("two 2 s stages took %v: not built in parallel", took)
	}
}

// TestBuildAddGit: ADD of a git repository served over dumb HTTP on
// loopback, at a tag and subdirectory, with and without --keep-git-dir.
func TestBuildAddGit(t *testing.T) {
	repo := buildtest.GitServer(t, map[string]string{"sub/run.sh": "echo tagged\n"}, map[string]string{"sub/run.sh": "echo head\n"})
	e := daemonEnv(t)
	tag := "addgit/" + uniq(t) + ":v1"
	t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nADD " + repo + "#v1:sub /tagged/\nADD --keep-git-dir " + repo + " /head\n",
	})
	r := e.docker(t, "build", "-t", tag, dir)
	if r.code != 0 {
		t.Fatalf("docker build with ADD of a git URL: %s", r)
	}
	got := e.berth(t, "run", "--rm", tag, "sh", "-c", "sh /tagged/run.sh; sh /head/sub/run.sh; stat -c %a /tagged/run.sh; test -f /head/.git/HEAD && echo git-kept").stdout
	if got != "tagged\nhead\n755\ngit-kept\n" {
		t.Fatalf("ADD git image says %q", got)
	}
}

// TestBuildParallelStageFailure: when one of two parallel stages fails,
// the build stops at once with that RUN's exit code, the sibling's
// container is killed and removed, and nothing is left behind.
func TestBuildParallelStageFailure(t *testing.T) {
	e := daemonEnv(t)
	before := must(t, e.berth(t, "ps", "-aq")).stdout
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox AS slow\nRUN sleep 20\n" +
			"FROM busybox AS bad\nRUN sleep 1; exit 3\n" +
			"FROM busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n",
	})
	start := time.Now()
	r := e.berth(t, "build", "--no-cache", dir)
	if r.code != 3 || !strings.Contains(r.stderr+r.stdout, "returned a non-zero code: 3") {
		t.Fatalf("build with a failing stage: %s", r)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the failing build took %v: the sibling stage was not stopped", took)
	}
	waitFor(t, func() bool {
		return must(t, e.berth(t, "ps", "-aq")).stdout == before
	})
}
