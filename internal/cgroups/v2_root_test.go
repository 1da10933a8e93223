package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	occgroups "github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// unifiedMount is where a hybrid host mounts its (controller-less) cgroup2
// hierarchy.
const unifiedMount = "/sys/fs/cgroup/unified"

// TestV2RealHybrid runs the v2 driver against a real cgroup2 directory on a
// hybrid host. The v2 hierarchy has no resource controllers there (they are
// bound to v1), but the core features work: the eBPF device filter, the
// freezer (cgroup.freeze) and the process list. runc also creates cgroups in
// this hierarchy on hybrid hosts, so this is no new kind of change to the
// host.
func TestV2RealHybrid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	var st syscall.Statfs_t
	if IsV2() || syscall.Statfs(unifiedMount, &st) != nil || st.Type != 0x63677270 { // CGROUP2_SUPER_MAGIC
		t.Skip("needs a hybrid host with cgroup2 at " + unifiedMount)
	}
	dir := filepath.Join(unifiedMount, fmt.Sprintf("berth-cgtest-v2-%d-%x", os.Getpid(), rand.Uint32()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 200 {
			pids, _ := occgroups.GetAllPids(dir)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	drv, err := fs2.NewManager(&occgroups.Cgroup{Resources: &occgroups.Resources{}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &manager{path: dir, v2: true, m: drv}

	// A shell that waits for a go, then tries two devices.
	sh := exec.Command("/bin/sh", "-c", `read go; (echo x > /dev/null) 2>/dev/null && echo null-ok || echo null-denied; (echo x > /dev/zero) && echo zero-ok || echo zero-denied`)
	stdin, _ := sh.StdinPipe()
	stdout, _ := sh.StdoutPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })
	busy := startBusy(t)
	for _, pid := range []int{sh.Process.Pid, busy} {
		// Apply's path creation needs a pure v2 host; join directly.
		if err := occgroups.WriteCgroupProc(dir, pid); err != nil {
			t.Fatal(err)
		}
	}

	err = m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rwm"}, // /dev/zero only
	}})
	if err != nil {
		t.Fatalf("Set devices (eBPF): %v", err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewScanner(stdout)
	var lines []string
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	if got := strings.Join(lines, " "); got != "null-denied zero-ok" {
		t.Errorf("device access under the eBPF filter: %q, want %q", got, "null-denied zero-ok")
	}

	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, busy) {
		t.Errorf("Pids = %v, %v; want %d in it", pids, err, busy)
	}
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if got := readFile(t, dir, "cgroup.freeze"); got != "1" {
		t.Errorf("cgroup.freeze = %q", got)
	}
	if n := progress(t, busy); n != 0 {
		t.Errorf("frozen process used %d ticks", n)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if n := progress(t, busy); n == 0 {
		t.Errorf("thawed process makes no progress")
	}
	s, err := m.Stats()
	if err != nil {
		// Without controllers only cpu.stat exists; the driver reports
		// the missing files of the others.
		t.Logf("Stats on a controller-less v2 cgroup: %v", err)
	} else if s.CPU.TotalUsage == 0 {
		t.Errorf("v2 cpu.stat usage is 0")
	}
}
