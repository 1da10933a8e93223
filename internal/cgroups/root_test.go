package cgroups

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
)

// testParent holds every cgroup the tests create, apart from real containers'.
const testParent = "/berth-cgtest"

func requireRootV1(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	if IsV2() {
		t.Skip("needs a cgroup v1 host")
	}
}

// startBusy starts a CPU-bound child, so freezing it is visible in its CPU
// time; it is killed when the test ends.
func startBusy(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// newTestManager creates a Manager under testParent and removes the cgroup
// (and the parent when empty) when the test ends, whatever happened.
func newTestManager(t *testing.T) Manager {
	t.Helper()
	id := fmt.Sprintf("t%d-%x", os.Getpid(), rand.Uint32())
	m, err := New(testParent+"/"+id, id)
	if err != nil {
		t.Fatal(err)
	}
	// Destroy forgets the paths it removed: note the parents now.
	var parents []string
	for _, sub := range []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer", "name=systemd", ""} {
		if p := m.Path(sub); p != "" {
			parents = append(parents, filepath.Dir(p))
		}
	}
	t.Cleanup(func() {
		// A cgroup with processes cannot be removed: kill what is left.
		for range 200 {
			pids, _ := m.Pids()
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, p := range parents {
			_ = os.Remove(p) // testParent; fails harmlessly while in use
		}
	})
	return m
}

func readFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cpuTicks is the user+system time of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// blockDevice finds a real disk to throttle.
func blockDevice() (major, minor int64, name string) {
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", n, "dev"))
		if err != nil {
			continue
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err == nil {
			return major, minor, n
		}
	}
	return 0, 0, ""
}

func progress(t *testing.T, pid int) int {
	before := cpuTicks(t, pid)
	time.Sleep(300 * time.Millisecond)
	return cpuTicks(t, pid) - before
}

func TestNewCreatesNothing(t *testing.T) {
	requireRootV1(t)
	m, err := New("", "berth-test-never-applied")
	if err != nil {
		t.Fatal(err)
	}
	p := m.Path("memory")
	if !strings.HasSuffix(p, "/berth/berth-test-never-applied") {
		t.Errorf("default path %q", p)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("New created %s (%v)", p, err)
	}
	if _, err := Load("", "berth-test-never-applied"); !errdefs.IsNotFound(err) {
		t.Errorf("Load of a missing cgroup: %v, want NotFound", err)
	}
}

func TestV1Lifecycle(t *testing.T) {
	requireRootV1(t)
	m := newTestManager(t)
	pid := startBusy(t)

	if err := m.Apply(pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	procCgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, sub := range []string{"memory", "pids", "cpu", "freezer", "devices"} {
		rel := strings.TrimPrefix(m.Path(sub), "/sys/fs/cgroup/"+sub)
		if !strings.Contains(string(procCgroup), ":"+sub+":"+rel+"\n") {
			t.Errorf("process not in %s cgroup %s:\n%s", sub, rel, procCgroup)
		}
	}

	r := dockerResources()
	major, minor, disk := blockDevice()
	if disk != "" {
		r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1 << 20}}
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if disk != "" {
		want := fmt.Sprintf("%d:%d 1048576", major, minor)
		if got := readFile(t, m.Path("blkio"), "blkio.throttle.read_bps_device"); got != want {
			t.Errorf("blkio.throttle.read_bps_device = %q, want %q", got, want)
		}
	}
	weight := readFile(t, m.Path("blkio"), "blkio.bfq.weight")
	if _, err := os.Stat(filepath.Join(m.Path("blkio"), "blkio.weight")); err == nil {
		weight = readFile(t, m.Path("blkio"), "blkio.weight")
	}
	if !strings.HasSuffix(weight, "300") {
		t.Errorf("blkio weight = %q, want 300", weight)
	}
	for sub, files := range map[string]map[string]string{
		"memory":  {"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "134217728", "memory.soft_limit_in_bytes": "33554432", "memory.swappiness": "10"},
		"cpu":     {"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
		"cpuset":  {"cpuset.cpus": "0", "cpuset.mems": "0"},
		"pids":    {"pids.max": "50"},
		"devices": {"devices.list": "c 136:* rwm\nc 1:3 rwm\nc 1:5 rwm\nc 5:2 rwm"}, // sorted
	} {
		for file, want := range files {
			got := readFile(t, m.Path(sub), file)
			if file == "devices.list" { // the kernel's order
				lines := strings.Split(got, "\n")
				slices.Sort(lines)
				got = strings.Join(lines, "\n")
			}
			if got != want {
				t.Errorf("%s/%s = %q, want %q", sub, file, got, want)
			}
		}
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Pids.Current < 1 || st.Pids.Limit != 50 {
		t.Errorf("pids stats %+v", st.Pids)
	}
	// Usage may be 0: v1 leaves the child's pages charged to its old cgroup.
	if st.Memory.Limit != 64<<20 || st.Memory.Raw["hierarchical_memsw_limit"] != 128<<20 {
		t.Errorf("memory stats %+v", st.Memory)
	}
	time.Sleep(100 * time.Millisecond)
	if st, _ = m.Stats(); st.CPU.TotalUsage == 0 || len(st.CPU.PerCPU) == 0 || st.CPU.Periods == 0 {
		t.Errorf("cpu stats %+v", st.CPU)
	}
	t.Logf("cpu stats: %+v, pids: %+v", st.CPU, st.Pids)

	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, pid) {
		t.Errorf("Pids = %v, %v; want %d in it", pids, err, pid)
	}

	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if got := readFile(t, m.Path("freezer"), "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state = %q", got)
	}
	if n := progress(t, pid); n != 0 {
		t.Errorf("frozen process used %d ticks of CPU", n)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if n := progress(t, pid); n == 0 {
		t.Errorf("thawed process makes no progress")
	}

	// Load finds it again, as a restarted daemon would.
	id := filepath.Base(m.Path("memory"))
	m2, err := Load(testParent+"/"+id, id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if pids, _ := m2.Pids(); !slices.Contains(pids, pid) {
		t.Errorf("loaded manager's Pids = %v", pids)
	}

	// Destroy after the process is gone removes every directory.
	p, _ := os.FindProcess(pid)
	_ = p.Kill()
	for range 100 {
		if pids, _ := m.Pids(); len(pids) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dirs []string
	for _, sub := range []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer", "name=systemd", ""} {
		if p := m.Path(sub); p != "" {
			dirs = append(dirs, p)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after Destroy (%v)", d, err)
		}
	}
	t.Logf("removed %d directories", len(dirs))
}

func TestV1RefusedValue(t *testing.T) {
	requireRootV1(t)
	m := newTestManager(t)
	pid := startBusy(t)
	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "99"}})
	if err == nil {
		t.Fatal("cpuset of CPU 99 accepted")
	}
	if !strings.Contains(err.Error(), "cpuset.cpus") || !strings.Contains(err.Error(), `"99"`) {
		t.Errorf("error does not name the file and value: %v", err)
	}
	if !errdefs.IsInvalidParameter(err) {
		t.Errorf("error not InvalidParameter: %v", err)
	}
	t.Log(err)
}

// TestApplySetCost measures the container-start cost of Apply+Set with
// Docker-like limits.
func TestApplySetCost(t *testing.T) {
	requireRootV1(t)
	cmd := exec.Command("/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	r := dockerResources()
	const n = 10
	var total time.Duration
	var prev Manager
	for range n {
		m := newTestManager(t)
		start := time.Now()
		if err := m.Apply(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if err := m.Set(r); err != nil {
			t.Fatal(err)
		}
		total += time.Since(start)
		if prev != nil {
			if err := prev.Destroy(); err != nil {
				t.Fatal(err)
			}
		}
		prev = m
	}
	avg := total / n
	t.Logf("Apply+Set: %.2f ms on average over %d cgroups", float64(avg.Microseconds())/1000, n)
	if avg > 50*time.Millisecond {
		t.Errorf("Apply+Set takes %v", avg)
	}
}
