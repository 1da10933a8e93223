package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/internal/errdefs"
	"berth/internal/fixture"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		name          string
		cfgEP, cfgCmd []string
		imgEP, imgCmd []string
		want          []string
		wantErr       bool
	}{
		{name: "image cmd only", imgCmd: []string{"sh"}, want: []string{"sh"}},
		{name: "config cmd replaces image cmd", cfgCmd: []string{"echo", "hi"}, imgCmd: []string{"sh"}, want: []string{"echo", "hi"}},
		{name: "image entrypoint plus image cmd", imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"/entry", "a"}},
		{name: "config cmd appended to image entrypoint", cfgCmd: []string{"b"}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"/entry", "b"}},
		{name: "config entrypoint drops image cmd", cfgEP: []string{"/mine"}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"/mine"}},
		{name: "config entrypoint and cmd", cfgEP: []string{"/mine", "-x"}, cfgCmd: []string{"c"}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"/mine", "-x", "c"}},
		{name: "empty entrypoint clears image entrypoint", cfgEP: []string{""}, cfgCmd: []string{"ls"}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"ls"}},
		{name: "empty entrypoint and no cmd", cfgEP: []string{""}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, wantErr: true},
		// A non-nil but empty Entrypoint (JSON []) keeps the image's cmd but not its entrypoint.
		{name: "empty list entrypoint", cfgEP: []string{}, imgEP: []string{"/entry"}, imgCmd: []string{"a"}, want: []string{"a"}},
		{name: "nothing to run", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Args(tc.cfgEP, tc.cfgCmd, tc.imgEP, tc.imgCmd)
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("Args = %q, %v; want an InvalidParameter error", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Args = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name     string
		cfg, img []string
		tty      bool
		home     string
		want     []string
	}{
		{
			name: "defaults",
			home: "/root",
			want: []string{"PATH=" + DefaultPathEnv, "HOSTNAME=abc", "HOME=/root"},
		},
		{
			name: "tty adds TERM",
			tty:  true,
			home: "/",
			want: []string{"PATH=" + DefaultPathEnv, "HOSTNAME=abc", "TERM=xterm", "HOME=/"},
		},
		{
			name: "image PATH replaces default in place, config overrides image",
			img:  []string{"PATH=/opt/bin", "FOO=img", "KEEP=1"},
			cfg:  []string{"FOO=cfg", "NEW=x"},
			home: "/root",
			want: []string{"PATH=/opt/bin", "HOSTNAME=abc", "FOO=cfg", "NEW=x", "KEEP=1", "HOME=/root"},
		},
		{
			name: "explicit HOME and TERM win",
			cfg:  []string{"HOME=/home/me", "TERM=dumb"},
			tty:  true,
			home: "/root",
			want: []string{"PATH=" + DefaultPathEnv, "HOSTNAME=abc", "TERM=dumb", "HOME=/home/me"},
		},
		{
			name: "bare name unsets",
			img:  []string{"FOO=img"},
			cfg:  []string{"FOO", "HOSTNAME"},
			home: "/",
			want: []string{"PATH=" + DefaultPathEnv, "HOME=/"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Env(tc.cfg, tc.img, "abc", tc.tty, tc.home)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Env =\n %q\nwant\n %q", got, tc.want)
			}
		})
	}
}

// busyboxRoot builds the busybox fixture once per test binary.
var busyboxRootDir string

func busyboxRoot(t *testing.T) string {
	t.Helper()
	if busyboxRootDir != "" {
		return busyboxRootDir
	}
	if _, err := os.Stat(fixture.BusyboxPath); err != nil {
		t.Skipf("busybox fixture unavailable: %v", err)
	}
	dir, err := os.MkdirTemp("", "specgen-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	// MkdirTemp makes 0700; as a container root it must be searchable by
	// non-root users.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fixture.BusyboxRootfs(dir); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	busyboxRootDir = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if busyboxRootDir != "" {
		os.RemoveAll(busyboxRootDir)
	}
	os.Exit(code)
}

func TestResolveUser(t *testing.T) {
	root := busyboxRoot(t)
	tests := []struct {
		spec     string
		groupAdd []string
		uid, gid uint32
		gids     []uint32
		home     string
		errLike  string
	}{
		{spec: "", uid: 0, gid: 0, gids: []uint32{0, 10}, home: "/root"},
		{spec: "root", uid: 0, gid: 0, gids: []uint32{0, 10}, home: "/root"},
		{spec: "www-data", uid: 33, gid: 33, gids: []uint32{33}, home: "/var/www"},
		{spec: "33", uid: 33, gid: 33, gids: []uint32{33}, home: "/var/www"},
		{spec: "nobody:users", uid: 65534, gid: 100, gids: []uint32{100}, home: "/nonexistent"},
		{spec: "1000", uid: 1000, gid: 0, gids: []uint32{0}, home: "/"},
		{spec: "1000:1000", uid: 1000, gid: 1000, gids: []uint32{1000}, home: "/"},
		{spec: "daemon", groupAdd: []string{"users", "4242", "daemon"}, uid: 1, gid: 1, gids: []uint32{1, 100, 4242}, home: "/usr/sbin"},
		{spec: "foo", errLike: "unable to find user foo: no matching entries in passwd file"},
		{spec: "root:nosuchgroup", errLike: "unable to find group nosuchgroup"},
		{spec: "root", groupAdd: []string{"nosuchgroup"}, errLike: "nosuchgroup"},
	}
	for _, tc := range tests {
		t.Run(tc.spec+strings.Join(tc.groupAdd, ","), func(t *testing.T) {
			u, home, err := resolveUser(root, tc.spec, tc.groupAdd)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) || !errdefs.IsInvalidParameter(err) {
					t.Fatalf("resolveUser(%q) error = %v; want InvalidParameter containing %q", tc.spec, err, tc.errLike)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tc.uid || u.GID != tc.gid || !slices.Equal(u.AdditionalGids, tc.gids) || home != tc.home {
				t.Fatalf("resolveUser(%q) = uid %d gid %d gids %v home %q; want %d %d %v %q", tc.spec, u.UID, u.GID, u.AdditionalGids, home, tc.uid, tc.gid, tc.gids, tc.home)
			}
		})
	}
}

// A symlinked /etc/passwd must be resolved inside the root, never on the host.
func TestResolveUserStaysInsideRoot(t *testing.T) {
	hostFile := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(hostFile, []byte("escapee:x:4321:4321::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFile, filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, _, err := resolveUser(root, "escapee", nil)
	if err == nil {
		t.Fatalf("user resolved through a symlink that leaves the root: uid %d", u.UID)
	}
}
