package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRecursiveReadOnlyBind: with "rro" (docker's read-only binds from API
// 1.44) a filesystem mounted under the bind's source is read-only in the
// container too; with a plain "ro" only the top mount is, as in runc.
func TestRecursiveReadOnlyBind(t *testing.T) {
	r := newRuntime(t)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs under the bind source: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })

	probe := "touch /data/top 2>/dev/null && echo top=rw || echo top=ro; " +
		"touch /data/sub/f 2>/dev/null && echo sub=rw || echo sub=ro"
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{[]string{"rbind", "ro"}, "top=ro sub=rw"},
		{[]string{"rbind", "ro", "rro"}, "top=ro sub=ro"},
		{[]string{"rbind", "rro"}, "top=ro sub=ro"},
	} {
		s := testSpec(t, "sh", "-c", probe)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: tc.opts})
		out, code := run(t, r, s)
		if got := strings.Join(strings.Fields(out), " "); code != 0 || got != tc.want {
			t.Errorf("options %v: exit %d, %q; want %q", tc.opts, code, got, tc.want)
		}
	}
	// The host's own view stays writable.
	if err := os.WriteFile(filepath.Join(sub, "host"), nil, 0o644); err != nil {
		t.Errorf("host side of the submount became read-only: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "a.b-c_d+e": true, "A9": true, "": false, "a/b": false, "a b": false,
		"é": false, "a:b": false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v; want %v", id, got, want)
		}
	}
	for _, id := range []string{".", "..", "x/y"} {
		if checkID(id) == nil {
			t.Errorf("checkID(%q) accepted", id)
		}
	}
}
