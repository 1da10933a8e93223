package integration

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// These scenarios feed berth bad input — unknown objects, bad flags, and
// corrupt or malicious tarballs — and require a clear error, the right exit
// code, and a store left exactly as it was.

func TestBadInputUnknownObjects(t *testing.T) {
	e := daemonEnv(t)
	for _, cli := range []struct {
		name string
		run  func(*testing.T, ...string) result
	}{{"docker", e.docker}, {"berth", e.berth}} {
		t.Run(cli.name, func(t *testing.T) {
			r := cli.run(t, "run", "--rm", "no-such-image-bad:v7")
			if r.code != 125 || !strings.Contains(r.stderr, "Unable to find image 'no-such-image-bad:v7' locally") {
				t.Errorf("run of an unknown image: want 125 and \"Unable to find image\", got %s", r)
			}
			if cli.name == "docker" {
				// docker create (unlike run) returns the error as is: exit 1.
				// berth's CLI exits 125 here: a CLI divergence reported apart.
				r = cli.run(t, "create", "no-such-image-bad:v7")
				if r.code != 1 || !strings.Contains(r.stderr, "Unable to find image") {
					t.Errorf("create of an unknown image: %s", r)
				}
			}
			for _, args := range [][]string{
				{"start", "nosuch-bad"}, {"stop", "nosuch-bad"}, {"kill", "nosuch-bad"}, {"wait", "nosuch-bad"},
				{"logs", "nosuch-bad"}, {"exec", "nosuch-bad", "true"}, {"rm", "nosuch-bad"}, {"pause", "nosuch-bad"},
				{"restart", "nosuch-bad"}, {"top", "nosuch-bad"}, {"port", "nosuch-bad"}, {"rename", "nosuch-bad", "xy"},
				{"diff", "nosuch-bad"}, {"export", "nosuch-bad"}, {"container", "inspect", "nosuch-bad"},
			} {
				r := cli.run(t, args...)
				if r.code != 1 || !strings.Contains(r.stderr, "No such container: nosuch-bad") {
					t.Errorf("%s %v: want exit 1 and \"No such container\", got %s", cli.name, args, r)
				}
			}
			r = cli.run(t, "image", "inspect", "no-such-image-bad:v7")
			if r.code != 1 || !strings.Contains(r.stderr, "No such image: no-such-image-bad:v7") {
				t.Errorf("image inspect of an unknown image: %s", r)
			}
			r = cli.run(t, "rmi", "no-such-image-bad:v7")
			if r.code != 1 || !strings.Contains(r.stderr, "No such image: no-such-image-bad:v7") {
				t.Errorf("rmi of an unknown image: %s", r)
			}
		})
	}
}

// removeNewContainers removes, when the test ends, the containers created
// from now on (docker itself leaves one behind for a start-time failure
// such as an unknown user).
func removeNewContainers(t *testing.T, e *env) {
	old := map[string]bool{}
	for _, id := range strings.Fields(must(t, e.docker(t, "ps", "-aq", "--no-trunc")).stdout) {
		old[id] = true
	}
	t.Cleanup(func() {
		for _, id := range strings.Fields(e.docker(t, "ps", "-aq", "--no-trunc").stdout) {
			if !old[id] {
				e.docker(t, "rm", "-f", id)
			}
		}
	})
}

func TestBadInputFlagsAndOptions(t *testing.T) {
	e := daemonEnv(t)
	removeNewContainers(t, e)
	for _, cli := range []struct {
		name string
		run  func(*testing.T, ...string) result
	}{{"docker", e.docker}, {"berth", e.berth}} {
		t.Run(cli.name, func(t *testing.T) {
			for _, c := range []struct {
				args []string
				want string // in stderr
			}{
				{[]string{"run", "--bogus", "busybox"}, "unknown flag: --bogus"},
				{[]string{"run", "--memory", "-5", "busybox"}, "invalid argument"},
				{[]string{"run", "--restart", "bogus", "busybox", "true"}, "invalid restart policy"},
				{[]string{"run", "--name", "bad name", "busybox", "true"}, "Invalid container name"},
				{[]string{"run", "--user", "nosuchuser", "busybox", "true"}, "unable to find user nosuchuser"},
				{[]string{"run", "-w", "relative", "busybox", "true"}, "needs to be an absolute path"},
				{[]string{"run", "-v", "/tmp:relative", "busybox", "true"}, "must be absolute"},
				{[]string{"run", "--memory", "1m", "busybox", "true"}, "Minimum memory limit allowed is 6MB"},
				{[]string{"run", "--rm", "--restart", "always", "busybox", "true"}, "conflicting options: cannot specify both --restart and --rm"},
			} {
				r := cli.run(t, c.args...)
				if r.code != 125 || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%s %v: want exit 125 and %q, got %s", cli.name, c.args, c.want, r)
				}
			}
		})
	}
}

// TestBadInputRefusedAtCreate: options the daemon can check at create are
// refused there (as dockerd does), leaving no half-made container behind.
func TestBadInputRefusedAtCreate(t *testing.T) {
	e := daemonEnv(t)
	removeNewContainers(t, e)
	count := func() int { return len(strings.Fields(must(t, e.docker(t, "ps", "-aq")).stdout)) }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpus", "-1"}, "NanoCPUs can not be negative"},
		{[]string{"-w", "relative"}, "needs to be an absolute path"},
		{[]string{"--memory", "1m"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--restart", "bogus"}, "invalid restart policy"},
	} {
		before := count()
		r := e.docker(t, append(append([]string{"create"}, c.args...), "busybox", "true")...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("create %v: want a refusal with %q, got %s", c.args, c.want, r)
		}
		if n := count(); n != before {
			t.Errorf("create %v: %d containers before, %d after: a refused create must leave none", c.args, before, n)
		}
	}
}

// storeState is what a failed load or import must not change: the image
// list and every file of the image store.
type storeState struct {
	images string
	files  map[string]int64 // path under the data root -> size
}

func (e *env) storeState(t *testing.T) storeState {
	t.Helper()
	st := storeState{images: must(t, e.docker(t, "images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")).stdout, files: map[string]int64{}}
	for _, sub := range []string{"content", "snapshots"} {
		root := filepath.Join(e.dataRoot, sub)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(e.dataRoot, p)
			if info, err := d.Info(); err == nil {
				st.files[rel] = info.Size()
				if d.IsDir() {
					st.files[rel] = -1
				}
			}
			return nil
		})
	}
	return st
}

func (s storeState) diff(o storeState) string {
	var out []string
	if s.images != o.images {
		out = append(out, fmt.Sprintf("image list was:\n%s\nis:\n%s", s.images, o.images))
	}
	for p, n := range o.files {
		if m, ok := s.files[p]; !ok {
			out = append(out, "new: "+p)
		} else if m != n {
			out = append(out, fmt.Sprintf("changed size: %s %d -> %d", p, m, n))
		}
	}
	for p := range s.files {
		if _, ok := o.files[p]; !ok {
			out = append(out, "gone: "+p)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func file(name, body string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), Format: tar.FormatPAX}, []byte(body)}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, Format: tar.FormatPAX}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644, Format: tar.FormatPAX}}
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX}}
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, en := range entries {
		h := en.hdr
		h.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := tw.Write(en.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dockerArchive wraps one layer into a docker-archive tarball (the format of
// docker save) tagged tag.
func dockerArchive(t *testing.T, layer []byte, tag string) []byte {
	t.Helper()
	sum := sha256.Sum256(layer)
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": []string{"layer/layer.tar"}}})
	return makeTar(t, file(cfgName, string(cfg)), dir("layer/"), file("layer/layer.tar", string(layer)), file("manifest.json", string(manifest)))
}

// hugeHeader is a tar whose only entry claims to be 8 GiB long but ends
// after a few bytes.
func hugeHeader(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 8 << 30, Format: tar.FormatPAX})
	tw.Write([]byte("just a little"))
	tw.Flush() // Close would complain about the missing bytes
	return b.Bytes()
}

// longPAX is a tar whose PAX extended header holds a 4 MiB path, more
// than any reader should take into memory for one header.
func longPAX(t *testing.T) []byte {
	path := strings.Repeat("a/", 2<<20) + "f"
	rec := " path=" + path + "\n"
	// A PAX record starts with its own length, digits included.
	n := len(rec)
	for len(fmt.Sprint(n+len(fmt.Sprint(n)))) != len(fmt.Sprint(n)) {
		n++
	}
	rec = fmt.Sprint(len(rec)+len(fmt.Sprint(n))) + rec
	var b bytes.Buffer
	b.Write(rawHeader("PaxHeaders/f", tar.TypeXHeader, int64(len(rec))))
	b.WriteString(rec)
	b.Write(make([]byte, (512-len(rec)%512)%512))
	b.Write(rawHeader("f", tar.TypeReg, 0))
	b.Write(make([]byte, 1024)) // end of archive
	return b.Bytes()
}

// rawHeader is one ustar header block, for headers archive/tar refuses to
// write.
func rawHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", 1700000000))
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// escapeCases are layer (or root filesystem) tarballs that try to write
// outside the directory they are unpacked into; outside is a host dir that
// must stay empty.
func escapeCases(t *testing.T, outside string) map[string][]byte {
	up := strings.Repeat("../", 30)
	return map[string][]byte{
		"dotdot":               makeTar(t, file("ok", "fine"), file(up+strings.TrimPrefix(outside, "/")+"/dotdot", "pwned")),
		"absolute":             makeTar(t, file(outside+"/absolute", "pwned")),
		"symlink-abs-parent":   makeTar(t, symlink("esc", outside), file("esc/through-symlink", "pwned")),
		"symlink-rel-parent":   makeTar(t, symlink("esc", up+strings.TrimPrefix(outside, "/")), file("esc/through-rel-symlink", "pwned")),
		"hardlink-abs":         makeTar(t, hardlink("shadow", "/etc/shadow")),
		"hardlink-dotdot":      makeTar(t, hardlink("passwd", up+"etc/passwd")),
		"hardlink-via-symlink": makeTar(t, symlink("etc", "/etc"), hardlink("pw", "etc/passwd")),
		"symlink-chain":        makeTar(t, symlink("a", "b"), symlink("b", up), file("a/"+strings.TrimPrefix(outside, "/")+"/chain", "pwned")),
		"huge-header":          hugeHeader(t),
		"long-pax-header":      longPAX(t),
		"truncated":            makeTar(t, file("a", strings.Repeat("x", 100000)))[:5000],
		"not-a-tar":            randomBytes(20000),
	}
}

// checkRefused asserts a refused load or import: nonzero exit, a message,
// nothing outside written, the store unchanged.
func checkRefused(t *testing.T, e *env, before storeState, outside string, what string, r result) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s was accepted: %s", what, r)
	} else if len(strings.TrimSpace(r.stderr)) < 10 {
		t.Errorf("%s: no clear error message: %s", what, r)
	} else {
		t.Logf("%s: %s", what, strings.TrimSpace(r.stderr))
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("%s wrote outside its root: %v", what, ents)
	}
	if d := before.diff(e.storeState(t)); d != "" {
		t.Errorf("%s changed the store:\n%s", what, d)
	}
}

func TestBadInputMaliciousLoad(t *testing.T) {
	e := daemonEnv(t)
	outside := t.TempDir()
	before := e.storeState(t)
	cases := escapeCases(t, outside)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		archive := dockerArchive(t, cases[name], "evil-"+name+":v1")
		r := e.dockerIn(t, string(archive), "load")
		checkRefused(t, e, before, outside, "load of a layer "+name, r)
	}

	// Archive-level attacks: the tarball's own structure.
	layer := makeTar(t, file("hello", "world"))
	good := dockerArchive(t, layer, "evil-structure:v1")
	sum := sha256.Sum256(layer)
	for name, archive := range map[string][]byte{
		"manifest-dotdot-layer": makeTar(t, file("manifest.json", `[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["../../../../etc/passwd"]}]`), file("c.json", `{"rootfs":{"type":"layers","diff_ids":["sha256:`+hex.EncodeToString(sum[:])+`"]}}`)),
		"manifest-abs-config":   makeTar(t, file("manifest.json", `[{"Config":"/etc/passwd","RepoTags":["evil:1"],"Layers":[]}]`)),
		"entry-dotdot":          makeTar(t, file("../../escape.json", "{}"), file("manifest.json", "[]")),
		"no-manifest":           makeTar(t, file("hello", "world")),
		"manifest-not-json":     makeTar(t, file("manifest.json", "this is not json")),
		"missing-layer":         makeTar(t, file("manifest.json", `[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["nope/layer.tar"]}]`), file("c.json", `{"rootfs":{"type":"layers","diff_ids":["sha256:`+hex.EncodeToString(sum[:])+`"]}}`)),
		"diffid-mismatch":       bytes.Replace(good, []byte("world"), []byte("WORLD"), 1),
		"truncated":             good[:len(good)/2],
		"oci-blob-mismatch": makeTar(t,
			file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`),
			file("index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("ab", 32)+`","size":2}]}`),
			file("blobs/sha256/"+strings.Repeat("ab", 32), "{}")),
		"empty": {},
	} {
		r := e.dockerIn(t, string(archive), "load") // "" is /dev/null: an empty body
		checkRefused(t, e, before, outside, "load of "+name, r)
	}

	// After all that, a good archive still loads and runs.
	ok := dockerArchive(t, makeTar(t, file("hello", "world")), "evil-control-"+uniq(t)+":v1")
	r := must(t, e.dockerIn(t, string(ok), "load"))
	if !strings.Contains(r.stdout, "Loaded image: evil-control-") {
		t.Fatalf("control load: %s", r)
	}
	must(t, e.docker(t, "rmi", strings.TrimSpace(strings.TrimPrefix(r.stdout, "Loaded image: "))))
}

// TestBadInputSymlinkReplacedByDir: a directory entry over a symlink to
// the outside replaces the symlink (docker's behaviour) — the files that
// follow land inside the layer, never through the old link.
func TestBadInputSymlinkReplacedByDir(t *testing.T) {
	e := daemonEnv(t)
	outside := t.TempDir()
	ref := "contained-" + uniq(t) + ":v1"
	t.Cleanup(func() { e.docker(t, "rmi", "-f", ref) })
	layer := makeTar(t, file("bin/busybox", "placeholder"), symlink("d", outside), dir("d/"), file("d/after-dir", "inside"))
	r := e.dockerIn(t, string(dockerArchive(t, layer, ref)), "load")
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a dir entry over a symlink wrote outside: %v (%s)", ents, r)
	}
	if r.code != 0 {
		t.Logf("refused instead: %s", r.stderr)
		return
	}
	out := filepath.Join(t.TempDir(), "c.tar")
	name := uniq(t)
	must(t, e.docker(t, "create", "--name", name, ref))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "export", "-o", out, name))
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := map[string]byte{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		found[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = h.Typeflag
	}
	if found["d"] != tar.TypeDir || found["d/after-dir"] != tar.TypeReg {
		t.Fatalf("in the container d must be a dir holding after-dir: %v", found)
	}
}

func TestBadInputMaliciousImport(t *testing.T) {
	e := daemonEnv(t)
	outside := t.TempDir()
	before := e.storeState(t)
	cases := escapeCases(t, outside)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		r := e.dockerIn(t, string(cases[name]), "import", "-", "evil-import-"+name+":v1")
		checkRefused(t, e, before, outside, "import of "+name, r)
	}
}
