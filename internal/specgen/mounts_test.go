package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseBind(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		raw       string
		want      specs.Mount
		wantClass errdefs.Class
		errSub    string
	}{
		{raw: dir + ":/data", want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate"}}},
		{raw: dir + "/:/data/:ro", want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "rprivate"}}},
		{raw: dir + ":/data:rw,z", want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate"}}},
		{raw: dir + ":/data:ro,rslave", want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "rslave"}}},
		{raw: dir + ":/data:Z,shared,cached", want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "shared"}}},
		{raw: "myvol:/data", wantClass: errdefs.ClassNotImplemented, errSub: `named volume "myvol"`},
		{raw: "/data", wantClass: errdefs.ClassNotImplemented, errSub: "anonymous volume"},
		{raw: "my vol:/data", wantClass: errdefs.ClassInvalidParameter, errSub: "invalid characters"},
		{raw: dir + ":/data:ro,rw", wantClass: errdefs.ClassInvalidParameter, errSub: "invalid mode"},
		{raw: dir + ":/data:bogus", wantClass: errdefs.ClassInvalidParameter, errSub: "invalid mode"},
		{raw: dir + ":data", wantClass: errdefs.ClassInvalidParameter, errSub: "must be absolute"},
		{raw: dir + ":/", wantClass: errdefs.ClassInvalidParameter, errSub: "destination can't be '/'"},
		{raw: dir + ":/a:ro:extra", wantClass: errdefs.ClassInvalidParameter, errSub: "invalid volume specification"},
		{raw: ":/a", wantClass: errdefs.ClassInvalidParameter, errSub: "invalid volume specification"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := parseBind(tc.raw)
			if tc.wantClass != errdefs.Unknown {
				if errdefs.ClassOf(err) != tc.wantClass || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("parseBind(%q) error %v (class %d); want class %d containing %q", tc.raw, err, errdefs.ClassOf(err), tc.wantClass, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Destination != tc.want.Destination || got.Source != tc.want.Source || got.Type != tc.want.Type || !slices.Equal(got.Options, tc.want.Options) {
				t.Fatalf("parseBind(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
		})
	}
}

// docker run -v creates a missing host directory.
func TestParseBindCreatesSource(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a", "b")
	if _, err := parseBind(src + ":/x"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		t.Fatalf("bind source not created: %v", err)
	}
}

func TestTmpfsMount(t *testing.T) {
	tests := []struct {
		dest, data string
		want       []string
		wantErr    bool
	}{
		{dest: "/run", want: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		{dest: "/x", data: "size=1m,mode=1777", want: []string{"noexec", "nosuid", "nodev", "rprivate", "size=1m", "mode=1777"}},
		{dest: "/x", data: "exec,size=1m,size=2m", want: []string{"nosuid", "nodev", "rprivate", "exec", "size=2m"}},
		{dest: "/x", data: "ro,shared,uid=1000", want: []string{"noexec", "nosuid", "nodev", "ro", "shared", "uid=1000"}},
		{dest: "/x", data: "bogus=1", wantErr: true},
		{dest: "x", wantErr: true},
	}
	for _, tc := range tests {
		m, err := tmpfsMount(tc.dest, tc.data)
		if tc.wantErr {
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("tmpfs %s:%s: error %v, want InvalidParameter", tc.dest, tc.data, err)
			}
			continue
		}
		if err != nil || m.Type != "tmpfs" || m.Source != "tmpfs" || m.Destination != tc.dest || !slices.Equal(m.Options, tc.want) {
			t.Errorf("tmpfs %s:%s = %+v, %v; want options %q", tc.dest, tc.data, m, err, tc.want)
		}
	}
}

func TestConvertMount(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name      string
		m         mount.Mount
		want      specs.Mount
		wantClass errdefs.Class
	}{
		{
			name: "bind read-only",
			m:    mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data", ReadOnly: true},
			want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "rprivate"}},
		},
		{
			name: "bind non-recursive rslave",
			m:    mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data", BindOptions: &mount.BindOptions{NonRecursive: true, Propagation: mount.PropagationRSlave}},
			want: specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"bind", "rslave"}},
		},
		{
			name: "tmpfs with size and mode",
			m:    mount.Mount{Type: mount.TypeTmpfs, Target: "/cache", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 3 << 20, Mode: 0o1777}},
			want: specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=3m"}},
		},
		{
			name: "tmpfs odd size, read-only, extra option",
			m:    mount.Mount{Type: mount.TypeTmpfs, Target: "/cache", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000, Options: [][]string{{"exec"}}}},
			want: specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "ro", "size=1000", "exec"}},
		},
		{name: "bind source missing", m: mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/data"}, wantClass: errdefs.ClassInvalidParameter},
		{name: "bind relative source", m: mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/data"}, wantClass: errdefs.ClassInvalidParameter},
		{name: "tmpfs with source", m: mount.Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/data"}, wantClass: errdefs.ClassInvalidParameter},
		{name: "volume", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/data"}, wantClass: errdefs.ClassNotImplemented},
		{name: "no type", m: mount.Mount{Source: dir, Target: "/data"}, wantClass: errdefs.ClassInvalidParameter},
		{name: "bad propagation", m: mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/d", BindOptions: &mount.BindOptions{Propagation: "sideways"}}, wantClass: errdefs.ClassInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := convertMount(tc.m)
			if tc.wantClass != errdefs.Unknown {
				if errdefs.ClassOf(err) != tc.wantClass {
					t.Fatalf("error %v (class %d), want class %d", err, errdefs.ClassOf(err), tc.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Destination != tc.want.Destination || got.Source != tc.want.Source || got.Type != tc.want.Type || !slices.Equal(got.Options, tc.want.Options) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// CreateMountpoint makes the missing source.
	m := mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/data", BindOptions: &mount.BindOptions{CreateMountpoint: true}}
	if _, err := convertMount(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); err != nil {
		t.Fatalf("CreateMountpoint did not create the source: %v", err)
	}
}

func TestBuildUserMounts(t *testing.T) {
	pinHost(t, false)
	a, b := t.TempDir(), t.TempDir()
	in := baseInput(t)
	in.HostConfig.Binds = []string{a + ":/srv/data/sub:ro", b + ":/srv"}
	in.HostConfig.Tmpfs = map[string]string{"/tmp": "size=1m,mode=1777"}
	in.HostConfig.Mounts = []mount.Mount{
		{Type: mount.TypeBind, Source: b, Target: "/etc/hosts", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}},
		{Type: mount.TypeTmpfs, Target: "/dev/shm"},
	}
	s := mustBuild(t, in)
	// Defaults minus the replaced /dev/shm, then user mounts by depth; within a
	// depth in input order: binds, --mount, --tmpfs, the network files (the
	// user's /etc/hosts replaces the daemon's).
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
		"/srv", "/tmp", "/etc/hosts", "/dev/shm", "/etc/hostname", "/etc/resolv.conf", "/srv/data/sub"}
	if got := destinations(s); !slices.Equal(got, want) {
		t.Fatalf("mounts\n %q\nwant\n %q", got, want)
	}
	if m := findMount(s, "/etc/hosts"); m.Source != b {
		t.Errorf("/etc/hosts source %q, want the user's %q", m.Source, b)
	}
	if m := findMount(s, "/dev/shm"); m.Type != "tmpfs" || slices.ContainsFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "size=") }) {
		t.Errorf("user /dev/shm %+v", m)
	}
	if s.Linux.RootfsPropagation != "shared" {
		t.Errorf("rootfs propagation %q, want shared for an rshared bind", s.Linux.RootfsPropagation)
	}

	in = baseInput(t)
	in.HostConfig.Binds = []string{a + ":/data"}
	in.HostConfig.Tmpfs = map[string]string{"/data": ""}
	if _, err := Build(in); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "duplicate mount point") {
		t.Fatalf("duplicate destination: %v", err)
	}

	in = baseInput(t)
	in.HostConfig.Binds = []string{"/dev:/dev"}
	s = mustBuild(t, in)
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Destination, "/dev/") {
			t.Errorf("default %s kept under a user-mounted /dev", m.Destination)
		}
	}
}

// FuzzTmpfsMount: any --tmpfs value either fails cleanly or yields a tmpfs
// at an absolute destination whose options have no duplicate data key.
func FuzzTmpfsMount(f *testing.F) {
	for _, s := range []string{"size=1m,mode=1777", "exec,noexec,exec", "ro,,size=1,size=2", "uid=1=2", "defaults"} {
		f.Add("/x", s)
	}
	f.Fuzz(func(t *testing.T, dest, data string) {
		m, err := tmpfsMount(dest, data)
		if err != nil {
			return
		}
		if !strings.HasPrefix(m.Destination, "/") || m.Destination == "/" || m.Type != "tmpfs" {
			t.Fatalf("tmpfsMount(%q, %q) = %+v", dest, data, m)
		}
		seen := map[string]bool{}
		for _, o := range m.Options {
			if k, _, ok := strings.Cut(o, "="); ok {
				if seen[k] {
					t.Fatalf("duplicate %s in %q", k, m.Options)
				}
				seen[k] = true
			}
		}
	})
}
