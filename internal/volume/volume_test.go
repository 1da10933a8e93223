package volume

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/fixture"
)

func openStore(t *testing.T, root string) (*Store, *bbolt.DB) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(root, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return s, db
}

func TestCreateGetListRemovePersist(t *testing.T) {
	root := t.TempDir()
	s, db := openStore(t, root)
	v, err := s.Create("data", "", nil, map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Driver != DriverLocal || v.Anonymous() || v.Labels["a"] != "b" {
		t.Fatalf("created %+v", v)
	}
	if st, err := os.Stat(filepath.Join(root, "volumes", "data", "_data")); err != nil || !st.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	again, err := s.Create("data", "local", nil, nil)
	if err != nil || again.CreatedAt != v.CreatedAt {
		t.Fatalf("create of an existing name must return it: %+v %v", again, err)
	}
	anon, err := s.Create("", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) || !anon.Anonymous() {
		t.Fatalf("anonymous volume %+v", anon)
	}
	if got := len(s.List()); got != 2 {
		t.Fatalf("list: %d volumes, want 2", got)
	}
	db.Close()

	s, db = openStore(t, root)
	defer db.Close()
	got, err := s.Get("data")
	if err != nil || got.Labels["a"] != "b" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "data")); !os.IsNotExist(err) {
		t.Fatalf("content left behind: %v", err)
	}
	if _, err := s.Get("data"); !errdefs.IsNotFound(err) || err.Error() != "get data: no such volume" {
		t.Fatalf("get after remove: %v", err)
	}
	if err := s.Remove("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestCreateRejects(t *testing.T) {
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	for _, tc := range []struct {
		name, driver string
		opts         map[string]string
		check        func(error) bool
	}{
		{"a", "", nil, errdefs.IsInvalidParameter},   // too short for the pattern
		{"x/y", "", nil, errdefs.IsInvalidParameter}, // path characters
		{"ok1", "nfs-plugin", nil, errdefs.IsNotFound},
		{"ok2", "", map[string]string{"bogus": "1"}, errdefs.IsInvalidParameter},
		{"ok3", "", map[string]string{"type": "none", "o": "bind"}, errdefs.IsInvalidParameter}, // no device
	} {
		if _, err := s.Create(tc.name, tc.driver, tc.opts, nil); !tc.check(err) {
			t.Errorf("Create(%q, %q, %v) = %v", tc.name, tc.driver, tc.opts, err)
		}
	}
	if len(s.List()) != 0 {
		t.Fatalf("rejected volumes were recorded: %v", s.List())
	}
}

func TestSizeAndEmpty(t *testing.T) {
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	if _, err := s.Create("sz", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	mp := s.Mountpoint("sz")
	if e, err := Empty(mp); err != nil || !e {
		t.Fatalf("new volume not empty: %v %v", e, err)
	}
	os.MkdirAll(filepath.Join(mp, "d"), 0o755)
	os.WriteFile(filepath.Join(mp, "d", "f"), make([]byte, 1000), 0o644)
	os.WriteFile(filepath.Join(mp, "g"), make([]byte, 24), 0o644)
	os.Link(filepath.Join(mp, "g"), filepath.Join(mp, "g2")) // counted once
	if got := s.Size("sz"); got != 1024 {
		t.Fatalf("size %d, want 1024", got)
	}
	if e, _ := Empty(mp); e {
		t.Fatal("volume with files reported empty")
	}
	if got := s.Size("nosuch"); got != -1 {
		t.Fatalf("size of a missing volume: %d", got)
	}
}

func TestCopyUpKeepsModesOwnersLinks(t *testing.T) {
	fixture.RequireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o750)
	os.WriteFile(filepath.Join(src, "sub", "f"), []byte("hello"), 0o640)
	os.Chown(filepath.Join(src, "sub", "f"), 1234, 5678)
	os.Symlink("sub/f", filepath.Join(src, "link"))
	unix.Chmod(src, 0o1777)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "sub", "f"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("content %q %v", b, err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dst, "sub", "f"), &st)
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o640 {
		t.Fatalf("file owner/mode %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	unix.Lstat(filepath.Join(dst, "sub"), &st)
	if st.Mode&0o7777 != 0o750 {
		t.Fatalf("dir mode %o", st.Mode&0o7777)
	}
	unix.Lstat(dst, &st)
	if st.Mode&0o7777 != 0o1777 {
		t.Fatalf("top dir mode %o, want the source's 1777", st.Mode&0o7777)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "sub/f" {
		t.Fatalf("symlink %q %v", l, err)
	}
	if err := CopyUp(filepath.Join(src, "missing"), t.TempDir()); err != nil {
		t.Fatalf("missing source: %v", err)
	}
}

func TestTmpfsVolumeRefCounted(t *testing.T) {
	fixture.RequireRoot(t)
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	if _, err := s.Create("tv", "", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, nil); err != nil {
		t.Fatal(err)
	}
	mp := s.Mountpoint("tv")
	t.Cleanup(func() { unix.Unmount(mp, unix.MNT_DETACH) })
	if got := s.Size("tv"); got != 0 {
		t.Fatalf("an unmounted backed volume has size %d", got)
	}
	for _, ref := range []string{"c1", "c2"} {
		if _, err := s.Mount("tv", ref); err != nil {
			t.Fatal(err)
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(mp, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Fatalf("not a tmpfs: %x %v", fs.Type, err)
	}
	if fs.Blocks*uint64(fs.Bsize) != 1<<20 {
		t.Fatalf("tmpfs size %d, want 1m", fs.Blocks*uint64(fs.Bsize))
	}
	os.WriteFile(filepath.Join(mp, "x"), []byte("abc"), 0o644)
	if !isMountpoint(mp) {
		t.Fatal("isMountpoint misses the tmpfs")
	}
	if got := s.Size("tv"); got != 3 {
		t.Fatalf("size %d, want 3", got)
	}
	if err := s.Remove("tv"); !errdefs.IsConflict(err) {
		t.Fatalf("remove while mounted: %v", err)
	}
	s.Unmount("tv", "c1")
	if _, err := os.Stat(filepath.Join(mp, "x")); err != nil {
		t.Fatal("unmounted while c2 still holds it")
	}
	s.Unmount("tv", "c2")
	if _, err := os.Stat(filepath.Join(mp, "x")); !os.IsNotExist(err) {
		t.Fatalf("still mounted after the last ref: %v", err)
	}
	if err := s.Remove("tv"); err != nil {
		t.Fatal(err)
	}
}

func TestBindVolume(t *testing.T) {
	fixture.RequireRoot(t)
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hostfile"), []byte("h"), 0o644)
	if _, err := s.Create("bv", "", map[string]string{"type": "none", "o": "bind", "device": host}, nil); err != nil {
		t.Fatal(err)
	}
	mp, err := s.Mount("bv", "c1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mp, unix.MNT_DETACH) })
	if b, err := os.ReadFile(filepath.Join(mp, "hostfile")); err != nil || string(b) != "h" {
		t.Fatalf("bind content %q %v", b, err)
	}
	if err := s.Unmount("bv", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mp, "hostfile")); !os.IsNotExist(err) {
		t.Fatalf("bind still mounted: %v", err)
	}
	if err := s.Remove("bv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "hostfile")); err != nil {
		t.Fatal("removing a bind volume must not touch the host directory")
	}
}

// TestEphemeral: only a tmpfs-backed volume loses its content when
// unmounted, so only it is populated at start rather than at create.
func TestEphemeral(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, true},
		{map[string]string{"type": "none", "o": "bind", "device": "/srv"}, false},
	} {
		if got := (&Volume{Options: tc.opts}).Ephemeral(); got != tc.want {
			t.Errorf("Ephemeral(%v) = %v, want %v", tc.opts, got, tc.want)
		}
	}
}
