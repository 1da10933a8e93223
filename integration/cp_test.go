package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cpCLIs runs a cp test with the docker CLI and with berth's.
var cpCLIs = []string{"docker", "berth"}

func (e *env) cli(t *testing.T, which string, args ...string) result {
	t.Helper()
	if which == "docker" {
		return e.docker(t, args...)
	}
	return e.berth(t, args...)
}

func (e *env) cliIn(t *testing.T, which, stdin string, args ...string) result {
	t.Helper()
	if which == "docker" {
		return e.dockerIn(t, stdin, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.run(ctx, stdin, e.bin, args...)
}

// tarFiles reads a tar into name -> content ("<dir>" for directories,
// "-> target" for symlinks).
func tarFiles(t *testing.T, data string) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(strings.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not a valid tar (%d bytes): %v", len(data), err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out[h.Name] = "<dir>"
		case tar.TypeSymlink:
			out[h.Name] = "-> " + h.Linkname
		default:
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(b)
		}
	}
}

func mkTar(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.String()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// catIn reads a file of a container, running or not, through cp to stdout.
func (e *env) catIn(t *testing.T, ctr, p string) string {
	t.Helper()
	r := must(t, e.docker(t, "cp", ctr+":"+p, "-"))
	files := tarFiles(t, r.stdout)
	body, ok := files[filepath.Base(p)]
	if !ok {
		t.Fatalf("cp %s:%s - gave entries %v", ctr, p, files)
	}
	return body
}

// imagePasswd is busybox's /etc/passwd, which must differ from the host's
// for the escape checks to mean something.
func imagePasswd(t *testing.T, e *env) string {
	t.Helper()
	pw := must(t, e.docker(t, "run", "--rm", "busybox", "cat", "/etc/passwd")).stdout
	if host, _ := os.ReadFile("/etc/passwd"); string(host) == pw || pw == "" {
		t.Fatalf("busybox's /etc/passwd is the host's (or empty): %q", pw)
	}
	return pw
}

// TestCpBothWays copies files and directories in and out of a running and
// a stopped container with both CLIs, and checks docker's rules for
// trailing slashes, "/." and missing paths, with their messages.
func TestCpBothWays(t *testing.T) {
	e := daemonEnv(t)
	busyboxPasswd := imagePasswd(t, e)
	for _, state := range []string{"running", "stopped"} {
		for _, cli := range cpCLIs {
			t.Run(state+"-"+cli, func(t *testing.T) {
				name := uniq(t)
				t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
				if state == "running" {
					must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sleep", "300"))
				} else {
					must(t, e.docker(t, "run", "--name", name, "busybox", "sh", "-c", "mkdir -p /data/sub; echo one > /data/sub/one; echo top > /data/top"))
				}
				if state == "running" {
					must(t, e.docker(t, "exec", name, "sh", "-c", "mkdir -p /data/sub; echo one > /data/sub/one; echo top > /data/top"))
				}
				dir := t.TempDir()
				host := filepath.Join(dir, "host.txt")
				os.WriteFile(host, []byte("hello from host\n"), 0o640)

				// host -> container: into a directory, onto a new name.
				must(t, e.cli(t, cli, "cp", host, name+":/tmp/"))
				must(t, e.cli(t, cli, "cp", host, name+":/tmp/renamed"))
				if got := e.catIn(t, name, "/tmp/host.txt"); got != "hello from host\n" {
					t.Errorf("/tmp/host.txt = %q", got)
				}
				if got := e.catIn(t, name, "/tmp/renamed"); got != "hello from host\n" {
					t.Errorf("/tmp/renamed = %q", got)
				}
				// a host directory, with and without "/.".
				src := filepath.Join(dir, "srcdir")
				os.MkdirAll(filepath.Join(src, "inner"), 0o755)
				os.WriteFile(filepath.Join(src, "inner", "f"), []byte("deep\n"), 0o644)
				must(t, e.cli(t, cli, "cp", src, name+":/data"))
				must(t, e.cli(t, cli, "cp", src+"/.", name+":/data/sub"))
				must(t, e.cli(t, cli, "cp", src, name+":/data/newdir"))
				for _, p := range []string{"/data/srcdir/inner/f", "/data/sub/inner/f", "/data/newdir/inner/f"} {
					if got := e.catIn(t, name, p); got != "deep\n" {
						t.Errorf("%s = %q", p, got)
					}
				}

				// container -> host: a file, a directory, its contents.
				out := filepath.Join(dir, "out")
				os.Mkdir(out, 0o755)
				must(t, e.cli(t, cli, "cp", name+":/data/top", out))
				must(t, e.cli(t, cli, "cp", name+":/data/top", filepath.Join(out, "top2")))
				must(t, e.cli(t, cli, "cp", name+":/data", filepath.Join(out, "copy")))
				must(t, e.cli(t, cli, "cp", name+":/data/sub/.", out))
				must(t, e.cli(t, cli, "cp", name+":/etc/passwd", out))
				for p, want := range map[string]string{"top": "top\n", "top2": "top\n", "copy/sub/one": "one\n", "copy/top": "top\n", "one": "one\n", "passwd": busyboxPasswd} {
					if got := readFile(t, filepath.Join(out, p)); got != want {
						t.Errorf("%s = %q, want %q", p, got, want)
					}
				}
				// the container's /etc/hostname is its own (a bind mount)
				if got := e.catIn(t, name, "/etc/hostname"); !strings.HasPrefix(strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", name)).stdout), strings.TrimSpace(got)) {
					t.Errorf("/etc/hostname = %q, not the container's ID prefix", got)
				}

				// "-": a tar on stdout and from stdin.
				files := tarFiles(t, must(t, e.cli(t, cli, "cp", name+":/data", "-")).stdout)
				if files["data/"] != "<dir>" || files["data/top"] != "top\n" || files["data/sub/one"] != "one\n" {
					t.Errorf("cp %s:/data - gave %v", name, files)
				}
				must(t, e.cliIn(t, cli, mkTar(t, map[string]string{"fromstdin": "piped\n"}), "cp", "-", name+":/tmp"))
				if got := e.catIn(t, name, "/tmp/fromstdin"); got != "piped\n" {
					t.Errorf("/tmp/fromstdin = %q", got)
				}

				// errors, with docker's exit status and wording.
				for _, tc := range []struct {
					args []string
					msg  string
				}{
					{[]string{name + ":/nonexistent", out}, "Error response from daemon: Could not find the file /nonexistent in container " + name},
					{[]string{name + ":/data/top/", out}, "not a directory"},
					{[]string{name + ":/data/top/.", out}, "not a directory"},
					{[]string{host, name + ":/nonexistent/dir/"}, "no such directory"},
					{[]string{host, name + ":/tmp/nodir/"}, "no such directory"},
					{[]string{name + ":/data", host}, "cannot copy directory"},
					{[]string{src, name + ":/data/top"}, "cannot copy directory"},
					{[]string{name + ":/data/top", filepath.Join(dir, "nodir", "x")}, "invalid output path: directory \"" + filepath.Join(dir, "nodir") + "\" does not exist"},
					{[]string{name + ":/data/top", filepath.Join(dir, "nodir") + "/"}, "no such directory"},
					{[]string{"nosuch-ctr-x:/etc/hostname", out}, "No such container: nosuch-ctr-x"},
					{[]string{"a", "b"}, "must specify at least one container source"},
					{[]string{name + ":/a", name + ":/b"}, "copying between containers is not supported"},
					{[]string{filepath.Join(dir, "missing"), name + ":/tmp"}, "no such file or directory"},
				} {
					r := e.cli(t, cli, append([]string{"cp"}, tc.args...)...)
					if r.code != 1 || !strings.Contains(r.stderr, tc.msg) {
						t.Errorf("cp %v: %s; want exit 1 and %q", tc.args, r, tc.msg)
					}
				}
				r := e.cliIn(t, cli, mkTar(t, map[string]string{"x": "y"}), "cp", "-", name+":/data/top")
				if r.code != 1 || !strings.Contains(r.stderr, `destination "`+name+`:/data/top" must be a directory`) {
					t.Errorf("cp - onto a file: %s", r)
				}
				// A directory is not replaced by a file, nor the reverse.
				os.Mkdir(filepath.Join(dir, "top"), 0o755)
				r = e.cli(t, cli, "cp", filepath.Join(dir, "top"), name+":/data")
				if r.code != 1 || !strings.Contains(r.stderr, `cannot overwrite non-directory "/data/top" with directory "top/"`) {
					t.Errorf("cp dir over file: %s", r)
				}
			})
		}
	}
}

// TestCpSymlinkEscape: symlinks inside the container that point at "/" or
// climb with "../../.." must resolve inside the container's root, for
// copies in both directions, running or stopped (CVE-2018-15664's class).
func TestCpSymlinkEscape(t *testing.T) {
	e := daemonEnv(t)
	busyboxPasswd := imagePasswd(t, e)
	for _, state := range []string{"running", "stopped"} {
		for _, cli := range cpCLIs {
			t.Run(state+"-"+cli, func(t *testing.T) {
				name := uniq(t)
				t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
				setup := "ln -s / /tmp/x; ln -s ../../.. /tmp/y; ln -s /etc/passwd /tmp/pw; mkdir /tmp/sub; ln -s ../../../../../ /tmp/sub/up"
				if state == "running" {
					must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sh", "-c", setup+"; exec sleep 300"))
					waitFor(t, func() bool { return e.docker(t, "exec", name, "test", "-L", "/tmp/sub/up").code == 0 })
				} else {
					must(t, e.docker(t, "run", "--name", name, "busybox", "sh", "-c", setup))
				}
				dir := t.TempDir()
				marker := "berth-cp-escape-" + filepath.Base(dir)
				src := filepath.Join(dir, marker)
				os.WriteFile(src, []byte("must stay inside\n"), 0o644)
				t.Cleanup(func() {
					os.Remove("/" + marker)
					os.Remove("/etc/" + marker)
					os.Remove("/tmp/" + marker)
				})
				hostUntouched := func(when string) {
					t.Helper()
					for _, p := range []string{"/" + marker, "/etc/" + marker, "/tmp/" + marker} {
						if _, err := os.Lstat(p); err == nil {
							t.Fatalf("%s: %s was written on the HOST", when, p)
						}
					}
				}

				// into the container through the links
				for _, dst := range []string{"/tmp/x/", "/tmp/y/", "/tmp/x", "/tmp/y/etc/", "/tmp/sub/up/tmp/x/", "/tmp/x/tmp/y/../../../.."} {
					must(t, e.cli(t, cli, "cp", src, name+":"+dst))
					hostUntouched("cp to " + dst)
				}
				if got := e.catIn(t, name, "/"+marker); got != "must stay inside\n" {
					t.Errorf("container /%s = %q", marker, got)
				}
				if got := e.catIn(t, name, "/etc/"+marker); got != "must stay inside\n" {
					t.Errorf("container /etc/%s = %q", marker, got)
				}
				// a tar from stdin into a linked directory
				must(t, e.cliIn(t, cli, mkTar(t, map[string]string{marker: "piped\n"}), "cp", "-", name+":/tmp/y/tmp"))
				hostUntouched("cp - to /tmp/y/tmp")
				if got := e.catIn(t, name, "/tmp/"+marker); got != "piped\n" {
					t.Errorf("container /tmp/%s = %q", marker, got)
				}

				// out of the container through the links: the container's
				// /etc/passwd, never the host's.
				out := filepath.Join(dir, "out")
				os.Mkdir(out, 0o755)
				for i, p := range []string{"/tmp/x/etc/passwd", "/tmp/y/etc/passwd", "/tmp/sub/up/etc/passwd", "/tmp/x/../../../etc/passwd"} {
					dst := filepath.Join(out, "p"+string(rune('0'+i)))
					must(t, e.cli(t, cli, "cp", name+":"+p, dst))
					if got := readFile(t, dst); got != busyboxPasswd {
						t.Errorf("cp %s: got %q, want the container's passwd", p, got)
					}
				}
				// -L follows a link to a file inside the container too
				must(t, e.cli(t, cli, "cp", "-L", name+":/tmp/pw", filepath.Join(out, "pw")))
				if got := readFile(t, filepath.Join(out, "pw")); got != busyboxPasswd {
					t.Errorf("cp -L /tmp/pw: %q", got)
				}
				// without -L the link itself is copied
				must(t, e.cli(t, cli, "cp", name+":/tmp/x", filepath.Join(out, "link")))
				if target, err := os.Readlink(filepath.Join(out, "link")); err != nil || target != "/" {
					t.Errorf("cp /tmp/x: readlink = %q, %v", target, err)
				}
				// the stat of a link reports its target inside the container
				files := tarFiles(t, must(t, e.cli(t, cli, "cp", name+":/tmp/x/", "-")).stdout)
				if files["x/etc/passwd"] != busyboxPasswd {
					t.Errorf("cp /tmp/x/ -: etc/passwd = %q (%d entries)", files["x/etc/passwd"], len(files))
				}
			})
		}
	}
}

// TestCpBindMounts: a -v bind and the container's own /etc/hosts are seen
// as the container sees them; read-only mounts and roots refuse copies.
func TestCpBindMounts(t *testing.T) {
	e := daemonEnv(t)
	for _, cli := range cpCLIs {
		t.Run(cli, func(t *testing.T) {
			name := uniq(t)
			ro := name + "-ro"
			t.Cleanup(func() { e.docker(t, "rm", "-f", name, ro) })
			vol := t.TempDir()
			os.WriteFile(filepath.Join(vol, "onhost"), []byte("host side\n"), 0o644)
			must(t, e.docker(t, "run", "-d", "--name", name, "--add-host", "cpthere:10.1.2.3", "-v", vol+":/data", "busybox", "sleep", "300"))
			dir := t.TempDir()
			src := filepath.Join(dir, "in.txt")
			os.WriteFile(src, []byte("into the bind\n"), 0o644)
			must(t, e.cli(t, cli, "cp", src, name+":/data/"))
			if got := readFile(t, filepath.Join(vol, "in.txt")); got != "into the bind\n" {
				t.Errorf("host side of the bind: %q", got)
			}
			if got := e.catIn(t, name, "/data/onhost"); got != "host side\n" {
				t.Errorf("/data/onhost = %q", got)
			}
			if got := e.catIn(t, name, "/etc/hosts"); !strings.Contains(got, "10.1.2.3\tcpthere") {
				t.Errorf("/etc/hosts = %q", got)
			}
			must(t, e.docker(t, "run", "-d", "--name", ro, "--read-only", "-v", vol+":/data:ro", "busybox", "sleep", "300"))
			if r := e.cli(t, cli, "cp", src, ro+":/tmp/"); r.code != 1 || !strings.Contains(r.stderr, "container rootfs is marked read-only") {
				t.Errorf("cp into a read-only root: %s", r)
			}
			if r := e.cli(t, cli, "cp", src, ro+":/data/"); r.code != 1 || !strings.Contains(r.stderr, "read-only") {
				t.Errorf("cp into a read-only bind: %s", r)
			}
		})
	}
}

// TestCpArchiveOwner: -a owns the copy by the container's user; without it
// the tar's owner (root here) stays.
func TestCpArchiveOwner(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "-d", "--name", name, "--user", "1000:1001", "busybox", "sleep", "300"))
	src := filepath.Join(t.TempDir(), "owned")
	os.WriteFile(src, []byte("x"), 0o644)
	must(t, e.docker(t, "cp", "-a", src, name+":/tmp/a"))
	must(t, e.berth(t, "cp", "-a", src, name+":/tmp/b"))
	must(t, e.berth(t, "cp", src, name+":/tmp/c"))
	got := must(t, e.docker(t, "exec", name, "stat", "-c", "%n %u:%g", "/tmp/a", "/tmp/b", "/tmp/c")).stdout
	if want := "/tmp/a 1000:1001\n/tmp/b 1000:1001\n/tmp/c 0:0\n"; got != want {
		t.Errorf("owners:\n%s want\n%s", got, want)
	}
}

// TestCpArchiveNames: the entry names of GET .../archive for the paths of
// moby's TestCopyFromContainer (which needs build): the base name as asked,
// "." for "/."-style paths, "/" for the root.
func TestCpArchiveNames(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	must(t, e.docker(t, "run", "--name", name, "busybox", "sh", "-c",
		"echo -n hello > /foo; mkdir -p /bar/quux; echo -n world > /bar/quux/baz; ln -s notexist /bar/notarget && ln -s quux/baz /bar/filesymlink && ln -s quux /bar/dirsymlink && ln -s / /bar/root"))
	root := map[string]string{"foo": "hello", "bar/quux/baz": "world", "bar/filesymlink": "-> quux/baz", "bar/dirsymlink": "-> quux", "bar/notarget": "-> notexist"}
	under := func(prefix string, top string) map[string]string {
		m := map[string]string{top: "<dir>"}
		for k, v := range root {
			m[prefix+k] = v
		}
		return m
	}
	for _, tc := range []struct {
		src    string
		expect map[string]string
	}{
		{"/", under("/", "/")},
		{".", under("./", "./")},
		{"/.", under("./", "./")},
		{"./", under("./", "./")},
		{"/./", under("./", "./")},
		{"/bar/root", map[string]string{"root": "-> /"}},
		{"/bar/root/", under("root/", "root/")},
		{"/bar/root/.", under("./", "./")},
		{"bar/quux", map[string]string{"quux/": "<dir>", "quux/baz": "world"}},
		{"bar/quux/", map[string]string{"quux/": "<dir>", "quux/baz": "world"}},
		{"bar/quux/.", map[string]string{"./": "<dir>", "./baz": "world"}},
		{"bar/quux/baz", map[string]string{"baz": "world"}},
		{"bar/filesymlink", map[string]string{"filesymlink": "-> quux/baz"}},
		{"bar/dirsymlink/", map[string]string{"dirsymlink/": "<dir>", "dirsymlink/baz": "world"}},
		{"bar/dirsymlink/.", map[string]string{"./": "<dir>", "./baz": "world"}},
		{"bar/notarget", map[string]string{"notarget": "-> notexist"}},
	} {
		files := tarFiles(t, must(t, e.docker(t, "cp", name+":"+tc.src, "-")).stdout)
		for k, v := range tc.expect {
			if files[k] != v {
				t.Errorf("cp %s -: entry %q = %q, want %q", tc.src, k, files[k], v)
			}
		}
	}
}
