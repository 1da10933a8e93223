package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/internal/errdefs"
	"berth/internal/fixture"

	"golang.org/x/sys/unix"
)

// The tar builders are the fixture's, under short names.
type entry = fixture.TarEntry

var (
	reg      = fixture.RegEntry
	dir      = fixture.DirEntry
	symlink  = fixture.SymlinkEntry
	hardlink = fixture.HardlinkEntry
	mkTar    = fixture.Tar
)

func opts() ApplyOptions { return ApplyOptions{NoChown: os.Geteuid() != 0} }

func TestApplyBasic(t *testing.T) {
	dst := t.TempDir()
	data := mkTar(t, dir("etc/"), reg("etc/hostname", "box\n"), symlink("etc/link", "/etc/hostname"),
		hardlink("etc/hard", "etc/hostname"), reg("usr/bin/x", "xx"), reg("etc/hostname", "again\n"))
	n, err := Apply(context.Background(), dst, bytes.NewReader(data), opts())
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len("box\n")+2+len("again\n")) {
		t.Errorf("size = %d", n)
	}
	b, _ := os.ReadFile(filepath.Join(dst, "etc/hostname"))
	if string(b) != "again\n" {
		t.Errorf("hostname = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "etc/link")); l != "/etc/hostname" {
		t.Errorf("link = %q", l)
	}
	if st, err := os.Stat(filepath.Join(dst, "usr/bin")); err != nil || !st.IsDir() {
		t.Errorf("implicit parent dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "etc/hard")); string(b) != "box\n" {
		t.Errorf("hardlink content %q (linked before the replace)", b)
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	big := tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 10 << 30}
	cases := map[string][]byte{
		"dotdot":          mkTar(t, reg("../evil", "x")),
		"dotdot-inner":    mkTar(t, reg("a/../../evil", "x")),
		"absolute":        mkTar(t, reg("/etc/evil", "x")),
		"symlink-escape":  mkTar(t, symlink("link", "/tmp"), reg("link/evil", "x")),
		"symlink-rel":     mkTar(t, symlink("link", "../../../../"), reg("link/evil", "x")),
		"hardlink-out":    mkTar(t, hardlink("h", "../../../etc/passwd")),
		"hardlink-abs":    mkTar(t, hardlink("h", "/etc/passwd")),
		"hardlink-via-ln": mkTar(t, symlink("l", "/etc"), hardlink("h", "l/passwd")),
		"device":          mkTar(t, entry{Hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8}}),
		"chardev":         mkTar(t, entry{Hdr: tar.Header{Name: "dev/mem", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 1}}),
	}
	// A header claiming 10 GiB, then the stream ends.
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	tw.WriteHeader(&big)
	tw.Write(make([]byte, 4096))
	cases["huge-truncated"] = hb.Bytes()
	cases["truncated"] = mkTar(t, reg("a", strings.Repeat("x", 3000)))[:1200]
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "root")
			os.Mkdir(dst, 0o755)
			_, err := Apply(context.Background(), dst, bytes.NewReader(data), opts())
			if err == nil {
				t.Fatal("accepted")
			}
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("error %v is not InvalidParameter", err)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Errorf("wrote outside the root: %v", ents)
			}
			if _, err := os.Stat("/tmp/evil"); err == nil {
				t.Errorf("/tmp/evil written")
			}
		})
	}
}

func TestApplyWhiteouts(t *testing.T) {
	fixture.RequireRoot(t)
	dst := t.TempDir()
	data := mkTar(t, dir("a/"), reg("a/.wh.gone", ""), dir("b/"), reg("b/.wh..wh..opq", ""), reg("b/new", "n"), reg(".wh.top", ""))
	if _, err := Apply(context.Background(), dst, bytes.NewReader(data), opts()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/gone", "top"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dst, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s is not a 0/0 char device: %v %o", p, err, st.Mode)
		}
	}
	v := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dst, "b"), OverlayOpaqueXattr, v)
	if err != nil || string(v[:n]) != "y" {
		t.Errorf("b not opaque: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b/.wh..wh..opq")); err == nil {
		t.Error("opaque marker file extracted")
	}
	// And back: WriteTree with Whiteouts gives the .wh. form again.
	var out bytes.Buffer
	if err := WriteTree(context.Background(), &out, dst, WriteOptions{Whiteouts: true}); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, out.Bytes())
	want := []string{"a/", "a/.wh.gone", "b/", "b/.wh..wh..opq", "b/new", ".wh.top"} // lexical by the names on disk
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("names = %v, want %v", names, want)
	}
}

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestWriteTreeDeterministicRoundTrip(t *testing.T) {
	src := t.TempDir()
	if err := fixture.BusyboxRootfs(src); err != nil {
		t.Skip(err)
	}
	os.Link(filepath.Join(src, "etc/passwd"), filepath.Join(src, "etc/passwd-link"))
	var a, b bytes.Buffer
	if err := WriteTree(context.Background(), &a, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := Apply(context.Background(), dst, bytes.NewReader(a.Bytes()), opts()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := WriteTree(context.Background(), &b, dst, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(a.Bytes()) != sha256.Sum256(b.Bytes()) {
		t.Error("tar of the extracted tree differs from the original tar")
	}
	var st1, st2 unix.Stat_t
	unix.Lstat(filepath.Join(dst, "etc/passwd"), &st1)
	unix.Lstat(filepath.Join(dst, "etc/passwd-link"), &st2)
	if st1.Ino != st2.Ino {
		t.Error("hardlink not preserved")
	}
}

func TestDecompress(t *testing.T) {
	if _, _, err := Decompress(bytes.NewReader([]byte("BZh91AY&SY"))); err == nil {
		t.Error("bzip2 accepted")
	}
	rc, c, err := Decompress(bytes.NewReader([]byte("plain")))
	if err != nil || c != Uncompressed {
		t.Fatal(err, c)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != "plain" {
		t.Errorf("got %q", b)
	}
	if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(nil), opts()); err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
}

// FuzzApply feeds the extractor arbitrary tars inside a root that sits in
// a fenced directory: whatever it accepts or refuses, nothing may appear
// beside the root.
func FuzzApply(f *testing.F) {
	f.Add(mkTar(f, reg("a", "x")))
	f.Add(mkTar(f, symlink("l", "/"), reg("l/x", "y")))
	f.Add(mkTar(f, dir("d/"), reg("d/.wh..wh..opq", ""), reg("d/.wh.x", "")))
	f.Add(mkTar(f, reg("../x", "y")))
	f.Add(mkTar(f, hardlink("h", "../x")))
	f.Add(mkTar(f, symlink("a", "b"), symlink("b", "../.."), reg("a/x", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		fence := t.TempDir()
		root := filepath.Join(fence, "root")
		os.Mkdir(root, 0o755)
		Apply(context.Background(), root, bytes.NewReader(data), ApplyOptions{NoChown: true})
		ents, _ := os.ReadDir(fence)
		if len(ents) != 1 || ents[0].Name() != "root" {
			t.Fatalf("extraction escaped the root: %v", ents)
		}
		filepath.WalkDir(fence, func(p string, d os.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				os.Chmod(p, 0o755) // so TempDir cleanup can remove it
			}
			return nil
		})
	})
}
