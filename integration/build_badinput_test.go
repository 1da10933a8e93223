package integration

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"berth/internal/fixture/savedimage"
)

// leftovers is what a build may leave behind in the daemon: containers,
// read-write layers, snapshots, build directories and mounts.
type leftovers struct {
	containers, rwLayers, snapshots, buildDirs, mounts []string
}

func listDir(t *testing.T, dir string, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func takeLeftovers(t *testing.T, e *env) leftovers {
	t.Helper()
	var l leftovers
	l.containers = strings.Fields(must(t, e.berth(t, "ps", "-aq", "--no-trunc")).stdout)
	slices.Sort(l.containers)
	l.rwLayers = listDir(t, filepath.Join(e.dataRoot, "containers"), "")
	l.snapshots = listDir(t, filepath.Join(e.dataRoot, "snapshots"), "")
	l.buildDirs = listDir(t, e.execRoot, "build-")
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		l.mounts = append(l.mounts, m.Mountpoint)
	}
	slices.Sort(l.mounts)
	return l
}

// checkNoLeftovers fails when a failed build left anything that was not
// there before it.
func checkNoLeftovers(t *testing.T, e *env, before leftovers) {
	t.Helper()
	after := takeLeftovers(t, e)
	for _, c := range []struct {
		what          string
		before, after []string
	}{
		{"containers", before.containers, after.containers},
		{"read-write layers under data-root/containers", before.rwLayers, after.rwLayers},
		{"snapshots", before.snapshots, after.snapshots},
		{"build directories under exec-root", before.buildDirs, after.buildDirs},
		{"mounts under the test directory", before.mounts, after.mounts},
	} {
		for _, x := range c.after {
			if !slices.Contains(c.before, x) {
				t.Errorf("the failed build left %s: %s", c.what, x)
			}
		}
	}
}

// TestBuildBadInput builds broken Dockerfiles and contexts with berth's
// CLI and the docker CLI: each fails with a clear error (the Dockerfile
// line where there is one, the RUN's exit code and output) and leaves no
// container, read-write layer, snapshot, build directory or mount behind.
func TestBuildBadInput(t *testing.T) {
	e := daemonEnv(t)
	cases := []struct {
		name, dockerfile string
		files            map[string]string
		code             int      // exit status of both clients
		want             []string // in each client's output
		dockerWant       []string // in the docker CLI's output only
	}{
		{name: "syntax error", dockerfile: "FROM busybox\nLABEL a=b\nENV\n", code: 1,
			want: []string{"dockerfile parse error line 3: ENV requires at least one argument"}},
		{name: "unknown instruction", dockerfile: "FROM busybox\n\n# comment\nFROBNICATE x\n", code: 1,
			want: []string{"line 4: unknown instruction: FROBNICATE"}},
		{name: "COPY source missing", dockerfile: "FROM busybox\nCOPY nothere.txt /x\n", code: 1,
			want: []string{"COPY failed", "nothere.txt"}},
		// The parent directory holds outside.txt (see below): it must not
		// be found, whatever the number of "..".
		{name: "COPY source outside the context", dockerfile: "FROM busybox\nCOPY ../outside.txt /x\n", code: 1,
			want: []string{"COPY failed", "outside.txt"}},
		{name: "COPY of a symlink to outside", dockerfile: "FROM busybox\nCOPY abs-link /x\n", code: 1,
			files: map[string]string{"@abs-link": "/etc/passwd"},
			want:  []string{"COPY failed", "abs-link"}},
		{name: "RUN fails", dockerfile: "FROM busybox\nRUN echo about-to-fail; exit 7\n", code: 7,
			want:       []string{"about-to-fail", "returned a non-zero code: 7"},
			dockerWant: []string{"The command '/bin/sh -c echo about-to-fail; exit 7' returned a non-zero code: 7"}},
		{name: "unknown stage", dockerfile: "FROM busybox\nCOPY --from=nosuchstage /x /x\n", code: 1,
			want: []string{"nosuchstage"}},
		{name: "cycle in --from", dockerfile: "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n", code: 1,
			want: []string{"circular dependency detected on stage"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			if err := os.WriteFile(filepath.Join(parent, "outside.txt"), []byte("outside the context\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "ctx")
			files := map[string]string{"Dockerfile": tc.dockerfile}
			for k, v := range tc.files {
				files[k] = v
			}
			writeFiles(t, dir, files)
			for _, client := range []string{"berth", "docker"} {
				before := takeLeftovers(t, e)
				var r result
				if client == "berth" {
					r = e.berth(t, "build", dir)
				} else {
					r = e.docker(t, "build", dir)
				}
				if r.code != tc.code {
					t.Errorf("%s build: exit %d, want %d\n%s", client, r.code, tc.code, r)
				}
				want := tc.want
				if client == "docker" {
					want = append(slices.Clone(want), tc.dockerWant...)
				}
				for _, w := range want {
					if !strings.Contains(r.stdout+r.stderr, w) {
						t.Errorf("%s build output lacks %q:\n%s", client, w, r)
					}
				}
				if strings.Contains(r.stdout+r.stderr, "outside the context\n") {
					t.Errorf("%s build read a file outside the context:\n%s", client, r)
				}
				checkNoLeftovers(t, e, before)
			}
		})
	}
}

// writeFiles makes the files of name -> content under dir; a name
// starting with "@" is a symlink to the content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		link := strings.HasPrefix(name, "@")
		p := filepath.Join(dir, strings.TrimPrefix(name, "@"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if link {
			err = os.Symlink(data, p)
		} else {
			err = os.WriteFile(p, []byte(data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestBuildSymlinkNotFollowedOut copies a context holding symlinks to
// files outside it (absolute and with ".."): the image has the links with
// their targets as written, never the content of what they point to.
func TestBuildSymlinkNotFollowedOut(t *testing.T) {
	e := daemonEnv(t)
	parent := t.TempDir()
	secret := filepath.Join(parent, "secret.txt")
	if err := os.WriteFile(secret, []byte("host-secret-content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "ctx")
	writeFiles(t, dir, map[string]string{
		"Dockerfile":     "FROM scratch\nCOPY . /ctx/\n",
		"in.txt":         "inside\n",
		"@d/abs-link":    secret,
		"@d/rel-link":    "../../secret.txt",
		"@d/inside-link": "../in.txt",
	})
	for _, client := range []string{"berth", "docker"} {
		tag := "symlinks/" + uniq(t) + "-" + client
		t.Cleanup(func() { e.berth(t, "rmi", "-f", tag) })
		if client == "berth" {
			must(t, e.berth(t, "build", "-t", tag, dir))
		} else {
			must(t, e.docker(t, "build", "-t", tag, dir))
		}
		saved := filepath.Join(t.TempDir(), "image.tar")
		must(t, e.berth(t, "save", "-o", saved, tag))
		img, err := savedimage.Load(saved)
		if err != nil {
			t.Fatal(err)
		}
		for p, target := range map[string]string{"/ctx/d/abs-link": secret, "/ctx/d/rel-link": "../../secret.txt", "/ctx/d/inside-link": "../in.txt"} {
			f, ok := img.Files[p]
			if !ok || f.Header.Typeflag != tar.TypeSymlink || f.Header.Linkname != target {
				t.Errorf("%s: %s is %+v, want a symlink to %s", client, p, f.Header, target)
			}
		}
		if strings.Contains(savedContents(t, saved), "host-secret-content") {
			t.Errorf("%s: the image holds the content of a file outside the context", client)
		}
	}
}
