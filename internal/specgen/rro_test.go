package specgen

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"

	"berth/internal/errdefs"
)

// TestReadOnlyBindRecursion: from API 1.44 Docker makes read-only binds
// read-only recursively ("rro"), for -v and --mount alike; a container
// created through an older API, or a mount with ReadOnlyNonRecursive, keeps
// a plain "ro"; writable binds never get it; the contradicting BindOptions
// are refused with dockerd's messages.
func TestReadOnlyBindRecursion(t *testing.T) {
	src := t.TempDir()
	bind := func(ro bool, bo *mount.BindOptions) mount.Mount {
		return mount.Mount{Type: mount.TypeBind, Source: src, Target: "/m", ReadOnly: ro, BindOptions: bo}
	}
	for _, tc := range []struct {
		name      string
		binds     []string
		mounts    []mount.Mount
		oldAPI    bool
		wantRRO   bool
		wantRO    bool
		wantError string
	}{
		{name: "-v ro", binds: []string{src + ":/m:ro"}, wantRRO: true, wantRO: true},
		{name: "-v ro, API < 1.44", binds: []string{src + ":/m:ro"}, oldAPI: true, wantRO: true},
		{name: "-v rw", binds: []string{src + ":/m"}},
		{name: "--mount readonly", mounts: []mount.Mount{bind(true, nil)}, wantRRO: true, wantRO: true},
		{name: "--mount readonly, API < 1.44", mounts: []mount.Mount{bind(true, nil)}, oldAPI: true, wantRO: true},
		{name: "--mount readonly non-recursive", mounts: []mount.Mount{bind(true, &mount.BindOptions{ReadOnlyNonRecursive: true})}, wantRO: true},
		{name: "--mount readonly force-recursive", mounts: []mount.Mount{bind(true, &mount.BindOptions{ReadOnlyForceRecursive: true})}, wantRRO: true, wantRO: true},
		{name: "--mount rw", mounts: []mount.Mount{bind(false, nil)}},
		{name: "rw non-recursive", mounts: []mount.Mount{bind(false, &mount.BindOptions{ReadOnlyNonRecursive: true})}, wantError: "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"},
		{name: "rw force-recursive", mounts: []mount.Mount{bind(false, &mount.BindOptions{ReadOnlyForceRecursive: true})}, wantError: "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"},
		{name: "both", mounts: []mount.Mount{bind(true, &mount.BindOptions{ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true})}, wantError: "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.Binds = tc.binds
			in.HostConfig.Mounts = tc.mounts
			in.ReadOnlyNonRecursive = tc.oldAPI
			s, err := Build(in)
			if tc.wantError != "" {
				if errdefs.ClassOf(err) != errdefs.ClassInvalidParameter || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("Build error %v; want InvalidParameter containing %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			m := findMount(s, "/m")
			if m == nil {
				t.Fatal("no mount at /m")
			}
			if got := slices.Contains(m.Options, "rro"); got != tc.wantRRO {
				t.Errorf("options %v: rro %v, want %v", m.Options, got, tc.wantRRO)
			}
			if got := slices.Contains(m.Options, "ro"); got != tc.wantRO {
				t.Errorf("options %v: ro %v, want %v", m.Options, got, tc.wantRO)
			}
		})
	}
}
