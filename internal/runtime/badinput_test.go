package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A create that fails after the init mounted the rootfs in our own mount
// namespace (a spec without one) removes those mounts too: nothing else
// would (TestBadInputLeavesNothing covers the other inputs). A mount that
// was at the rootfs before (an engine's overlay, here a bind) stays, after
// the failed create and after a delete.
func TestFailedCreateWithoutMountNamespaceLeavesNoMounts(t *testing.T) {
	r := newRuntime(t)
	rootfs := ownRootfs(t)
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
	before, err := mountsUnder(rootfs)
	if err != nil || len(before) != 1 {
		t.Fatalf("mounts under the rootfs before: %v, %v", before, err)
	}
	onlyBefore := func(when string) {
		t.Helper()
		mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(rootfs))
		if len(mounts) != 1 || mounts[0].ID != before[0] {
			t.Errorf("%s: %d mounts under the rootfs, want only the one made before (%d)", when, len(mounts), before[0])
		}
	}
	s := testSpec(t, "/bin/nope")
	s.Root.Path = rootfs
	s.Hostname = ""
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
	_, err = r.Create("nomnt-bad", CreateOpts{Bundle: t.TempDir(), Spec: s})
	if err == nil || !strings.Contains(err.Error(), "/bin/nope") {
		t.Fatalf("create with a missing executable: %v", err)
	}
	onlyBefore("after the failed create")
	if _, err := os.Stat(filepath.Join(r.Root(), "nomnt-bad")); !os.IsNotExist(err) {
		t.Errorf("state dir left behind: %v", err)
	}
	assertNoCgroup(t, "nomnt-bad")

	s.Process.Args = []string{"true"}
	out, code := run(t, r, s)
	if code != 0 {
		t.Fatalf("run without a mount namespace: exit %d: %s", code, out)
	}
	onlyBefore("after delete")
}
