package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	occgroups "github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
)

func ptr[T any](v T) *T { return &v }

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		in, id, want string
		bad          bool
	}{
		{"", "abc", "/berth/abc", false},
		{"/custom/path", "abc", "/custom/path", false},
		{"relative/path", "abc", "relative/path", false},
		{"", "", "", true},
		{"", "a/b", "", true},
		{"", "..", "", true},
		{"/a/../../etc", "abc", "", true},
		{"system.slice:docker:abc", "abc", "", true},
		{"/", "abc", "", true},
	} {
		got, err := cgroupPath(tc.in, tc.id)
		if tc.bad {
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("cgroupPath(%q, %q) = %q, %v; want InvalidParameter", tc.in, tc.id, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cgroupPath(%q, %q) = %q, %v; want %q", tc.in, tc.id, got, err, tc.want)
		}
	}
}

// dockerResources is what `docker run -m 64m --memory-swap 128m --cpus 0.5
// --cpu-shares 512 --cpuset-cpus 0 --pids-limit 50 --blkio-weight 300`
// puts in a spec, plus Docker's default device rules (abridged).
func dockerResources() *specs.LinuxResources {
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"}, // /dev/null
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rwm"}, // /dev/zero
			{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"},                     // pts
			{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(2)), Access: "rwm"}, // ptmx
		},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20)),
			Reservation: ptr(int64(32 << 20)), Swappiness: ptr(uint64(10)), Kernel: ptr(int64(1 << 30))},
		CPU: &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)),
			Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(50))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))},
	}
}

func TestResourcesV1(t *testing.T) {
	r := dockerResources()
	r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}}
	res, err := resources(r, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory != 64<<20 || res.MemorySwap != 128<<20 || res.MemoryReservation != 32<<20 || *res.MemorySwappiness != 10 {
		t.Errorf("memory: %d %d %d %d", res.Memory, res.MemorySwap, res.MemoryReservation, *res.MemorySwappiness)
	}
	if res.CpuShares != 512 || res.CpuWeight != 0 || res.CpuQuota != 50000 || res.CpuPeriod != 100000 || res.CpusetCpus != "0" || res.CpusetMems != "0" {
		t.Errorf("cpu: %+v", res)
	}
	if *res.PidsLimit != 50 || res.BlkioWeight != 300 {
		t.Errorf("pids %d blkio %d", *res.PidsLimit, res.BlkioWeight)
	}
	if len(res.BlkioThrottleReadBpsDevice) != 1 || res.BlkioThrottleReadBpsDevice[0].String() != "8:0 1048576" {
		t.Errorf("throttle: %v", res.BlkioThrottleReadBpsDevice)
	}
	if res.SkipDevices || len(res.Devices) != 5 {
		t.Fatalf("devices: skip=%v %d rules", res.SkipDevices, len(res.Devices))
	}
	want := []string{"a *:* rwm", "c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm", "c 5:2 rwm"}
	for i, d := range res.Devices {
		if d.CgroupString() != want[i] || d.Allow != (i > 0) {
			t.Errorf("device %d: %q allow=%v, want %q", i, d.CgroupString(), d.Allow, want[i])
		}
	}

	// Without device rules the current ones are kept.
	res, err = resources(&specs.LinuxResources{}, false, "")
	if err != nil || !res.SkipDevices || res.PidsLimit != nil {
		t.Errorf("empty resources: %+v, %v", res, err)
	}
	// Docker's "0 means unlimited" for pids.
	res, _ = resources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(0))}}, false, "")
	if *res.PidsLimit != -1 {
		t.Errorf("pids limit 0 -> %d, want -1 (max)", *res.PidsLimit)
	}
}

func TestResourcesInvalid(t *testing.T) {
	for name, r := range map[string]*specs.LinuxResources{
		"device type":   {Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "x"}}},
		"device access": {Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rwx"}}},
		"swap < memory": {Memory: &specs.LinuxMemory{Limit: ptr(int64(100 << 20)), Swap: ptr(int64(50 << 20))}},
		"swappiness":    {Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(101))}},
		"unified on v1": {Unified: map[string]string{"memory.high": "1G"}},
	} {
		if _, err := resources(r, false, ""); !errdefs.IsInvalidParameter(err) {
			t.Errorf("%s: got %v, want InvalidParameter", name, err)
		}
	}
}

func TestRealtimeIgnoredWhenUnsupported(t *testing.T) {
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000)), RealtimePeriod: ptr(uint64(1000000))}}
	res, err := resources(r, true, "")
	if err != nil || res.CpuRtRuntime != 0 || res.CpuRtPeriod != 0 {
		t.Errorf("v2: rt %d/%d, %v; want dropped", res.CpuRtRuntime, res.CpuRtPeriod, err)
	}
	// A v1 cpu directory without the rt files (no CONFIG_RT_GROUP_SCHED).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cpu.shares"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ = resources(r, false, filepath.Join(dir, "child"))
	if res.CpuRtRuntime != 0 {
		t.Errorf("v1 without rt files: rt kept")
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.rt_runtime_us"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ = resources(r, false, filepath.Join(dir, "child"))
	if res.CpuRtRuntime != 1000 || res.CpuRtPeriod != 1000000 {
		t.Errorf("v1 with rt files: rt %d/%d dropped", res.CpuRtRuntime, res.CpuRtPeriod)
	}
}

// TestV2Files checks the values written on a v2 host, where this machine
// (v1) cannot create a real v2 cgroup with controllers: the v2 driver runs
// against a fake cgroup directory (the library's TestMode), and the test reads
// the files it wrote.
func TestV2Files(t *testing.T) {
	occgroups.TestMode = true
	t.Cleanup(func() { occgroups.TestMode = false })
	dir := t.TempDir()
	files := map[string]string{
		"cgroup.controllers": "cpuset cpu io memory hugetlb pids",
		"memory.swap.max":    "", "memory.max": "", "memory.low": "",
		"cpu.weight": "", "cpu.max": "", "cpuset.cpus": "", "cpuset.mems": "",
		"pids.max": "", "io.weight": "", "io.max": "", "hugetlb.2MB.max": "",
		"cgroup.freeze": "0",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := dockerResources()
	r.Devices = nil // the eBPF device program needs a real cgroup: TestV2RealHybrid
	r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	r.BlockIO.ThrottleWriteIOPSDevice = []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 100}}
	res, err := resources(r, true, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := fs2.NewManager(&occgroups.Cgroup{Resources: &occgroups.Resources{}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(res); err != nil {
		t.Fatalf("Set: %v", err)
	}
	for file, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "67108864", // spec swap is memory+swap: 128M - 64M
		"memory.low":      "33554432",
		"cpu.weight":      "59", // 512 shares: the library maps 2..262144 onto 1..10000 with 1024 -> 100
		"cpu.max":         "50000 100000",
		"cpuset.cpus":     "0",
		"cpuset.mems":     "0",
		"pids.max":        "50",
		"io.weight":       "2930", // blkio 10..1000 -> io 1..10000 linearly
		"io.max":          "8:16 wiops=100",
		"hugetlb.2MB.max": "4194304",
	} {
		got, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	// Unlimited swap and pids.
	r = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(-1))},
		Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}
	res, _ = resources(r, true, "")
	if err := m.Set(res); err != nil {
		t.Fatalf("Set: %v", err)
	}
	for file, want := range map[string]string{"memory.swap.max": "max", "pids.max": "max"} {
		got, _ := os.ReadFile(filepath.Join(dir, file))
		if string(got) != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestStatsConversion(t *testing.T) {
	st := occgroups.NewStats()
	st.MemoryStats.Usage = occgroups.MemoryData{Usage: 100, MaxUsage: 150, Limit: 1000}
	st.MemoryStats.SwapUsage = occgroups.MemoryData{Usage: 130}
	st.MemoryStats.Cache = 40
	st.MemoryStats.Stats["total_rss"] = 60
	st.BlkioStats.IoServiceBytesRecursive = []occgroups.BlkioStatEntry{
		{Major: 8, Op: "Read", Value: 10}, {Major: 8, Op: "Write", Value: 20}, {Major: 8, Op: "Total", Value: 30},
		{Major: 9, Op: "Read", Value: 1}}
	st.BlkioStats.IoServicedRecursive = []occgroups.BlkioStatEntry{{Op: "Read", Value: 2}, {Op: "Write", Value: 3}}
	got := convertStats(st, false)
	if got.Memory.Usage != 100 || got.Memory.MaxUsage != 150 || got.Memory.Limit != 1000 ||
		got.Memory.Swap != 30 || got.Memory.Cache != 40 || got.Memory.RSS != 60 {
		t.Errorf("memory: %+v", got.Memory)
	}
	if got.IO != (IOStats{ReadBytes: 11, WriteBytes: 20, ReadOps: 2, WriteOps: 3}) {
		t.Errorf("io: %+v", got.IO)
	}
	st.MemoryStats.SwapOnlyUsage.Usage = 7
	st.MemoryStats.Stats["anon"] = 55
	if got := convertStats(st, true); got.Memory.Swap != 7 || got.Memory.RSS != 55 {
		t.Errorf("v2 memory: %+v", got.Memory)
	}
}
