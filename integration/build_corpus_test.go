package integration

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// corpusFakeOnly are the corpus cases whose want.txt depends on the unit
// tests' fake backend (docs/builder-compat.md, "Fake-only cases"): what
// differs with the real busybox fixture and a real RUN.
var corpusFakeOnly = map[string]string{
	"arg-scoping":      "copies /run.log, which only the fake RUN writes",
	"multistage":       "copies /run.log, which only the fake RUN writes",
	"multistage-index": "copies /run.log, which only the fake RUN writes",
	"platform":         "copies /run.log, which only the fake RUN writes",
	"copy-chown-chmod": "the busybox fixture has no user app",
	"heredoc-copy":     "the busybox fixture has no user app",
	"heredoc-run":      "the busybox fixture has no bash",
	// Not the fake's doing: like dockerd, berth resolves --from=b as a
	// short image ID when an image's ID starts with b, so the result
	// depends on the images built before.
	"copy-from-later-stage": "--from=b is also a short image ID prefix",
}

// fakeBase are the paths of the fake backend's busybox; the real one's
// differ and are not the builder's doing.
var fakeBase = map[string]bool{"/bin": true, "/bin/sh": true, "/etc": true, "/etc/passwd": true, "/etc/group": true, "/tmp": true, "/run.log": true}

// TestDockerBuildCorpus builds every case of the builder corpus
// (internal/build/testdata) with the unmodified docker CLI 28.2.2 on its
// classic path against berth's daemon, and checks the outcome against the
// case's want.txt: a failing case fails with the same exit code and
// message; a built one has the same config fields (Env, Cmd, Entrypoint,
// WorkingDir, User, Labels, ExposedPorts, Volumes, Healthcheck,
// StopSignal, Shell, OnBuild) and every path the Dockerfile made with
// the same type, mode, owner and content.
func TestDockerBuildCorpus(t *testing.T) {
	e := daemonEnv(t)
	dockerCLI(t)
	t.Setenv("DOCKER_BUILDKIT", "0")
	cases, err := filepath.Glob("../internal/build/testdata/*/Dockerfile")
	if err != nil || len(cases) < 40 {
		t.Fatalf("corpus has %d cases (%v), want 40+", len(cases), err)
	}
	for _, df := range cases {
		src := filepath.Dir(df)
		name := filepath.Base(src)
		t.Run(name, func(t *testing.T) {
			if why, ok := corpusFakeOnly[name]; ok {
				t.Skipf("want.txt does not hold here: %s", why)
			}
			want, err := os.ReadFile(filepath.Join(src, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "ctx")
			if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
				t.Fatalf("copy the case: %v: %s", err, out)
			}
			os.Remove(filepath.Join(dir, "want.txt"))
			args := []string{"build", "--rm"}
			if b, err := os.ReadFile(filepath.Join(dir, "options")); err == nil {
				os.Remove(filepath.Join(dir, "options"))
				for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					kind, rest, _ := strings.Cut(l, " ")
					args = append(args, "--"+map[string]string{"arg": "build-arg", "label": "label", "target": "target"}[kind], rest)
				}
			}
			tag := "corpus/" + uniq(t)
			t.Cleanup(func() { e.docker(t, "rmi", "-f", tag) })
			r := e.docker(t, append(args, "-t", tag, dir)...)
			checkCorpusCase(t, e, string(want), r, tag)
		})
	}
}

var (
	wantError = regexp.MustCompile(`(?m)^error \(code (\d+)\): (.*)$`)
	wantFile  = regexp.MustCompile(`^(/.*?) ([0-7]) ([0-7]+) (\d+):(\d+)(?: (.*))?$`)
)

func checkCorpusCase(t *testing.T, e *env, want string, r result, tag string) {
	t.Helper()
	if msg, ok := strings.CutPrefix(strings.TrimSpace(want), "parse error: "); ok {
		if r.code != 1 || !strings.Contains(r.stderr, msg) {
			t.Fatalf("want exit 1 with %q; got %s", msg, r)
		}
		return
	}
	if m := wantError.FindStringSubmatch(want); m != nil {
		code, _ := strconv.Atoi(m[1])
		if r.code != code || !strings.Contains(r.stderr, m[2]) {
			t.Fatalf("want exit %d with %q; got %s", code, m[2], r)
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("want a build; got %s", r)
	}
	cfgJSON, tree, ok := strings.Cut(want[strings.Index(want, "config: ")+len("config: "):], "\n}\n")
	if !ok {
		t.Fatalf("want.txt has no config")
	}
	var wantCfg map[string]any
	if err := json.Unmarshal([]byte(cfgJSON+"\n}"), &wantCfg); err != nil {
		t.Fatalf("want.txt config: %v", err)
	}
	var gotCfg map[string]any
	raw := must(t, e.docker(t, "image", "inspect", "-f", "{{json .Config}}", tag)).stdout
	if err := json.Unmarshal([]byte(raw), &gotCfg); err != nil {
		t.Fatalf("inspect %s: %v", tag, err)
	}
	for _, f := range []string{"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "Healthcheck", "StopSignal", "Shell", "OnBuild"} {
		if w, g := emptyAsNil(wantCfg[f]), emptyAsNil(gotCfg[f]); !reflect.DeepEqual(w, g) {
			t.Errorf("config.%s: got %v, want %v", f, g, w)
		}
	}
	files := exportTree(t, e, tag)
	for _, l := range strings.Split(strings.TrimSpace(tree), "\n") {
		m := wantFile.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("want.txt line %q", l)
		}
		if fakeBase[m[1]] {
			continue
		}
		got, ok := files[m[1]]
		if !ok {
			t.Errorf("%s: missing", m[1])
			continue
		}
		typ := m[2]
		if typ == "1" {
			typ = "0" // a hard link is the file it links to
		}
		line := fmt.Sprintf("%s %s %s:%s", typ, m[3], m[4], m[5])
		if got.line != line {
			t.Errorf("%s: got %s, want %s", m[1], got.line, line)
		}
		rest := m[6]
		switch {
		case strings.HasPrefix(rest, `"`):
			data, err := strconv.Unquote(rest)
			if err == nil && data != got.data {
				t.Errorf("%s: content %q, want %q", m[1], got.data, data)
			}
		case strings.HasPrefix(rest, "-> "):
			if got.link != strings.TrimPrefix(rest, "-> ") {
				t.Errorf("%s: link %q, want %s", m[1], got.link, rest)
			}
		case strings.HasSuffix(rest, " bytes"):
			if n, _ := strconv.Atoi(strings.TrimSuffix(rest, " bytes")); n != len(got.data) {
				t.Errorf("%s: %d bytes, want %s", m[1], len(got.data), rest)
			}
		}
	}
}

func emptyAsNil(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

type exportedFile struct {
	line, data, link string
}

// exportTree is the image's merged file tree, from docker export of a
// container created (never started) from it.
func exportTree(t *testing.T, e *env, tag string) map[string]exportedFile {
	t.Helper()
	cid := strings.TrimSpace(must(t, e.docker(t, "create", tag, "true")).stdout)
	defer e.docker(t, "rm", "-f", cid)
	// The harness's runner buffers the output: the corpus images are
	// busybox plus a few files, small enough.
	out := must(t, e.docker(t, "export", cid)).stdout
	files := map[string]exportedFile{}
	tr := tar.NewReader(strings.NewReader(out))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("export %s: %v", tag, err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		f := exportedFile{line: fmt.Sprintf("%c %o %d:%d", hdr.Typeflag, hdr.Mode&0o7777, hdr.Uid, hdr.Gid), link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			f.data = string(b)
		case tar.TypeLink:
			// The content is the target's, exported earlier.
			f.line = fmt.Sprintf("0 %o %d:%d", hdr.Mode&0o7777, hdr.Uid, hdr.Gid)
			f.data = files["/"+strings.TrimPrefix(hdr.Linkname, "/")].data
			f.link = ""
		}
		files[p] = f
	}
	return files
}
