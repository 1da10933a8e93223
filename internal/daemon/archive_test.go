package daemon

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerFSResolve: symlinks resolve inside the container's root,
// whatever they point at, and paths cross into bind mounts.
func TestContainerFSResolve(t *testing.T) {
	root := t.TempDir()
	bind := t.TempDir()
	for _, d := range []string{"tmp/sub", "etc", "data"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("ctr"), 0o644)
	os.WriteFile(filepath.Join(bind, "hosts"), []byte("bound"), 0o644)
	os.MkdirAll(filepath.Join(bind, "vol"), 0o755)
	os.Symlink("/", filepath.Join(root, "tmp", "x"))
	os.Symlink("../../..", filepath.Join(root, "tmp", "y"))
	os.Symlink("../../../../../../etc", filepath.Join(root, "tmp", "sub", "up"))
	os.Symlink("/tmp/loop", filepath.Join(root, "tmp", "loop"))
	os.Symlink("/etc", filepath.Join(bind, "vol", "toetc")) // inside a bind: still the container's /etc
	fs := &containerFS{root: root, mounts: []fsMount{
		{dest: "/etc/hosts", source: filepath.Join(bind, "hosts"), rw: true},
		{dest: "/data", source: filepath.Join(bind, "vol"), rw: true},
	}}
	for _, tc := range []struct {
		in, want string
		follow   bool
	}{
		{"/tmp/x", "/tmp/x", false},
		{"/tmp/x", "/", true},
		{"/tmp/x/etc/passwd", "/etc/passwd", true},
		{"/tmp/y/etc", "/etc", true},
		{"/tmp/sub/up/passwd", "/etc/passwd", true},
		{"/../../etc/./passwd", "/etc/passwd", true},
		{"/data/toetc/passwd", "/etc/passwd", true},
		{"/tmp/missing/a", "/tmp/missing/a", true},
	} {
		got, err := fs.resolve(tc.in, tc.follow)
		if err != nil || got != tc.want {
			t.Errorf("resolve(%q, %v) = %q, %v; want %q", tc.in, tc.follow, got, err, tc.want)
		}
		if h := fs.hostPath(got); !strings.HasPrefix(h, root) && !strings.HasPrefix(h, bind) {
			t.Errorf("hostPath(%q) = %q: outside the root and the binds", got, h)
		}
	}
	if _, err := fs.resolve("/tmp/loop/a", true); err == nil {
		t.Error("a symlink loop resolved")
	}
	if h := fs.hostPath("/etc/hosts"); h != filepath.Join(bind, "hosts") {
		t.Errorf("hostPath(/etc/hosts) = %q, want the bind's source", h)
	}
	if h := fs.hostPath("/data/f"); h != filepath.Join(bind, "vol", "f") {
		t.Errorf("hostPath(/data/f) = %q", h)
	}
}

// TestContainerFSSymlinkedMountTarget: a bind whose target crosses an
// absolute symlink of the image (/sockets -> /root) is found at the
// resolved place (moby#52653).
func TestContainerFSSymlinkedMountTarget(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "root"), 0o700)
	os.Symlink("/root", filepath.Join(root, "sockets"))
	sock := filepath.Join(t.TempDir(), "sock")
	os.WriteFile(sock, []byte("s"), 0o644)
	fs := &containerFS{root: root, mounts: []fsMount{{dest: "/sockets/docker.sock", source: sock, rw: true}}}
	fs.resolveMounts()
	p, err := fs.resolve("/sockets/docker.sock", true)
	if err != nil || p != "/root/docker.sock" || fs.hostPath(p) != sock {
		t.Fatalf("resolve = %q, %v; hostPath %q, want %q", p, err, fs.hostPath(p), sock)
	}
	if m := fs.mountOf("/root"); m != nil {
		t.Errorf("/root is not a mount: %+v", m)
	}
}

func TestFilterCopyTar(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	mk := func(hdrs ...*tar.Header) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hdrs {
			tw.WriteHeader(h)
		}
		tw.Close()
		return &b
	}
	for _, tc := range []struct {
		hdr     *tar.Header
		wantErr string
	}{
		{&tar.Header{Name: "d", Typeflag: tar.TypeReg}, `cannot overwrite directory "/c/d" with non-directory "d"`},
		{&tar.Header{Name: "f/", Typeflag: tar.TypeDir}, `cannot overwrite non-directory "/c/f" with directory "f/"`},
		{&tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}, `invalid symlink "/c/a/l" -> "../../x"`},
		{&tar.Header{Name: ".wh.f", Typeflag: tar.TypeReg}, "reserved"},
		{&tar.Header{Name: "new", Typeflag: tar.TypeReg, Uid: 5}, ""},
		{&tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, ""},
	} {
		var out bytes.Buffer
		err := filterCopyTar(mk(tc.hdr), &out, dir, "/c", true, [2]int{7, 8})
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.hdr.Name, err)
				continue
			}
			h, _ := tar.NewReader(&out).Next()
			if h == nil || h.Uid != 7 || h.Gid != 8 {
				t.Errorf("%s: owner not replaced: %+v", tc.hdr.Name, h)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want %q", tc.hdr.Name, err, tc.wantErr)
		}
	}
}

// TestContainerUser: cp -a owns files as `docker run --user` would run.
func TestContainerUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nu:x:2375:2376::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\ng:x:2376:\nother:x:900:\n"), 0o644)
	fs := &containerFS{root: root}
	for spec, want := range map[string][2]int{
		"": {0, 0}, "u": {2375, 2376}, "2375": {2375, 2376}, "7777": {7777, 0},
		"7777:": {7777, 0}, ":7777": {0, 7777}, "u:other": {2375, 900}, "1000:1001": {1000, 1001},
	} {
		got, err := containerUser(fs, spec)
		if err != nil || got != want {
			t.Errorf("containerUser(%q) = %v, %v; want %v", spec, got, err, want)
		}
	}
	if _, err := containerUser(fs, "nosuchuser"); err == nil {
		t.Error("an unknown user name resolved")
	}
}
