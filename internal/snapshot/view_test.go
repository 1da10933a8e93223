package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestMountView mounts one- and two-layer chains read-only: the upper
// layer's file wins, the view cannot be written, and nothing is created
// under the containers directory.
func TestMountView(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	root := t.TempDir()
	s, err := Open(filepath.Join(root, "snapshots"), filepath.Join(root, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	layer := func(name, content string) digest.Digest {
		c := digest.FromString(name)
		_, _, err := s.Create(context.Background(), c, func(diff string) (digest.Digest, error) {
			return c, os.WriteFile(filepath.Join(diff, "f"), []byte(content), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	bottom, top := layer("bottom", "bottom"), layer("top", "top")
	for _, tc := range []struct {
		chain []digest.Digest
		want  string
	}{{[]digest.Digest{bottom}, "bottom"}, {[]digest.Digest{top, bottom}, "top"}} {
		target := t.TempDir()
		if err := s.MountView(tc.chain, target); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(target, "f"))
		werr := os.WriteFile(filepath.Join(target, "g"), []byte("x"), 0o644)
		if err := Unmount(target); err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want || err != nil {
			t.Errorf("chain of %d: f = %q (%v), want %q", len(tc.chain), got, err, tc.want)
		}
		if !errors.Is(werr, unix.EROFS) {
			t.Errorf("chain of %d: writing the view gave %v, want EROFS", len(tc.chain), werr)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "containers")); len(ents) != 0 {
		t.Errorf("the views left %v under containers", ents)
	}
	if err := s.MountView([]digest.Digest{digest.FromString("gone")}, t.TempDir()); err == nil {
		t.Error("a view of a missing layer mounted")
	}
}
