package cgroups

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2ChildEnv, when set, makes TestV2PrivateMount the child half: its value
// is the cgroup path to use.
const v2ChildEnv = "BERTH_CGTEST_V2_CHILD"

// TestV2PrivateMount runs the Manager as on a pure cgroup v2 host: the test
// binary re-runs itself in a private mount namespace with cgroup2 mounted
// at /sys/fs/cgroup, where IsV2 is true and New/Apply/Set/Stats/Freeze/
// Destroy take their v2 paths, unchanged. There is one cgroup2 hierarchy
// per kernel, so the cgroup is made in the host's (the hybrid mount at
// /sys/fs/cgroup/unified), where the parent cleans up.
//
// On this hybrid host only hugetlb is a v2 controller: memory, cpu, cpuset,
// io, pids and freezer are bound to their v1 hierarchies, and a controller
// can be in one hierarchy only, so their limits and stats cannot be
// exercised here (TestV2Files checks the files they would write, and
// TestV2RealHybrid the eBPF device filter and the core freezer).
func TestV2PrivateMount(t *testing.T) {
	if path := os.Getenv(v2ChildEnv); path != "" {
		v2PrivateChild(t, path)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount cgroup2 and create cgroups")
	}
	var st syscall.Statfs_t
	if IsV2() || syscall.Statfs(unifiedMount, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skip("needs a hybrid host with cgroup2 at " + unifiedMount + " (a pure v2 host runs the v2 paths in every test)")
	}
	path := fmt.Sprintf("/berth-cgtest-v2priv-%d-%x", os.Getpid(), rand.Uint32())
	hostDir := filepath.Join(unifiedMount, path)
	rootControl := filepath.Join(unifiedMount, "cgroup.subtree_control")
	before, _ := os.ReadFile(rootControl)
	t.Cleanup(func() {
		if _, err := os.Stat(hostDir); err == nil {
			t.Errorf("the child left %s", hostDir)
			_ = os.Remove(hostDir)
		}
		// Apply enabled the hierarchy's controllers below the root, as on
		// a v2 host; put the root back as it was (best effort: another
		// cgroup may use them by now).
		after, _ := os.ReadFile(rootControl)
		for _, c := range strings.Fields(string(after)) {
			if !slices.Contains(strings.Fields(string(before)), c) {
				if err := os.WriteFile(rootControl, []byte("-"+c), 0); err != nil {
					t.Logf("restore %s: -%s: %v", rootControl, c, err)
				}
			}
		}
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestV2PrivateMount$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), v2ChildEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in a private mount namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestV2PrivateMount") {
		t.Fatalf("child did not pass:\n%s", out)
	}
	t.Logf("child:\n%s", out)
}

func v2PrivateChild(t *testing.T, path string) {
	// Private propagation first: the cgroup2 mount must not reach the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatal(err)
	}
	if !IsV2() {
		t.Fatal("IsV2 is false with cgroup2 at /sys/fs/cgroup")
	}
	sleeper := exec.Command("/bin/sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pid := sleeper.Process.Pid

	m, err := New(path, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/sys/fs/cgroup", path)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("New created %s (%v)", dir, err)
	}
	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	if m.Path("memory") != dir || m.Path("hugetlb") != dir {
		t.Errorf("Path = %s, want the one v2 directory %s", m.Path("memory"), dir)
	}
	if procs := strings.Fields(readFile(t, dir, "cgroup.procs")); !slices.Equal(procs, []string{fmt.Sprint(pid)}) {
		t.Errorf("cgroup.procs = %v, want [%d]", procs, pid)
	}

	hugetlb := slices.Contains(strings.Fields(readFile(t, dir, "cgroup.controllers")), "hugetlb")
	if hugetlb {
		if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}); err != nil {
			t.Fatalf("Set hugetlb: %v", err)
		}
		if got := readFile(t, dir, "hugetlb.2MB.max"); got != "4194304" {
			t.Errorf("hugetlb.2MB.max = %q, want 4194304", got)
		}
	} else {
		t.Log("no hugetlb controller in this cgroup2 hierarchy: limits not exercised")
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	// pids.current is absent without the pids controller: counted from cgroup.procs.
	if s.Pids.Current != 1 {
		t.Errorf("Stats pids = %d, want 1", s.Pids.Current)
	}
	if _, ok := s.Hugetlb["2MB"]; hugetlb && !ok {
		t.Errorf("Stats has no hugetlb 2MB entry: %+v", s.Hugetlb)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "cgroup.freeze"); got != "1" {
		t.Errorf("cgroup.freeze = %q after Freeze", got)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{pid}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}

	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Destroy left %s (%v)", dir, err)
	}
}
