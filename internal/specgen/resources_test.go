package specgen

import (
	"runtime"
	"slices"
	"testing"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func p64(v int64) *int64 { return &v }

func TestBuildResources(t *testing.T) {
	pinHost(t, false)
	no := false
	in := baseInput(t)
	in.HostConfig.Resources = container.Resources{
		Memory:            64 << 20,
		MemoryReservation: 32 << 20,
		MemorySwappiness:  p64(10),
		OomKillDisable:    &no,
		NanoCPUs:          1_500_000_000 / int64(max(1, 3-runtime.NumCPU())), // ≤ NumCPU
		CPUShares:         512,
		CpusetCpus:        "0",
		CpusetMems:        "0",
		PidsLimit:         p64(100),
		BlkioWeight:       300,
	}
	s := mustBuild(t, in)
	r := s.Linux.Resources
	m := r.Memory
	if *m.Limit != 64<<20 || *m.Reservation != 32<<20 || *m.Swap != 128<<20 || *m.Swappiness != 10 || *m.DisableOOMKiller {
		t.Errorf("memory limit %d reservation %d swap %d swappiness %d oomkill-disable %v", *m.Limit, *m.Reservation, *m.Swap, *m.Swappiness, *m.DisableOOMKiller)
	}
	c := r.CPU
	wantQuota := in.HostConfig.NanoCPUs * 100000 / 1e9
	if *c.Period != 100000 || *c.Quota != wantQuota || *c.Shares != 512 || c.Cpus != "0" || c.Mems != "0" {
		t.Errorf("cpu period %d quota %d (want %d) shares %d cpus %q mems %q", *c.Period, *c.Quota, wantQuota, *c.Shares, c.Cpus, c.Mems)
	}
	if *r.Pids.Limit != 100 || *r.BlockIO.Weight != 300 {
		t.Errorf("pids %d blkio weight %d", *r.Pids.Limit, *r.BlockIO.Weight)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow {
		t.Errorf("device rules lost when resources are set: %+v", r.Devices)
	}
}

func TestMemoryAndCPUEdgeCases(t *testing.T) {
	pinHost(t, false)
	tests := []struct {
		name  string
		r     container.Resources
		check func(t *testing.T, r *specs.LinuxResources)
	}{
		{name: "unlimited swap", r: container.Resources{Memory: 64 << 20, MemorySwap: -1}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != -1 {
				t.Errorf("swap %d", *r.Memory.Swap)
			}
		}},
		{name: "explicit swap", r: container.Resources{Memory: 64 << 20, MemorySwap: 100 << 20}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != 100<<20 {
				t.Errorf("swap %d", *r.Memory.Swap)
			}
		}},
		{name: "swappiness -1 is unset (what the CLI sends)", r: container.Resources{MemorySwappiness: p64(-1)}, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil {
				t.Errorf("memory %+v", r.Memory)
			}
		}},
		{name: "pids 0 is unlimited", r: container.Resources{PidsLimit: p64(0)}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != -1 {
				t.Errorf("pids %d", *r.Pids.Limit)
			}
		}},
		{name: "pids -5 is unlimited", r: container.Resources{PidsLimit: p64(-5)}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != -1 {
				t.Errorf("pids %d", *r.Pids.Limit)
			}
		}},
		{name: "period and quota", r: container.Resources{CPUPeriod: 50000, CPUQuota: 25000}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Period != 50000 || *r.CPU.Quota != 25000 {
				t.Errorf("cpu %d/%d", *r.CPU.Quota, *r.CPU.Period)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.Resources = tc.r
			tc.check(t, mustBuild(t, in).Linux.Resources)
		})
	}

	// Without swap accounting Docker ignores the swap limit.
	swapAccounting = func() bool { return false }
	in := baseInput(t)
	in.HostConfig.Memory = 64 << 20
	if m := mustBuild(t, in).Linux.Resources.Memory; m.Swap != nil {
		t.Errorf("swap %d set without swap accounting", *m.Swap)
	}
}

func TestResourceErrors(t *testing.T) {
	pinHost(t, false)
	for _, r := range []container.Resources{
		{Memory: 4 << 20},
		{MemorySwap: 100 << 20},
		{Memory: 64 << 20, MemorySwap: 32 << 20},
		{Memory: 64 << 20, MemoryReservation: 128 << 20},
		{MemorySwappiness: p64(101)},
		{NanoCPUs: 1e9, CPUQuota: 50000},
		{NanoCPUs: int64(runtime.NumCPU()+1) * 1e9},
		{CPUShares: -1},
		{CPUPeriod: 10},
		{CPUQuota: 10},
		{CpusetCpus: "0-a"},
		{BlkioWeight: 5},
		{DeviceCgroupRules: []string{"x 1:2 rwm"}},
		{Devices: []container.DeviceMapping{{PathOnHost: "/no/such/device", PathInContainer: "/dev/x", CgroupPermissions: "rwm"}}},
		{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/x", CgroupPermissions: "rwx"}}},
	} {
		in := baseInput(t)
		in.HostConfig.Resources = r
		if _, err := Build(in); !errdefs.IsInvalidParameter(err) {
			t.Errorf("resources %+v: error %v, want InvalidParameter", r, err)
		}
	}
}

func TestBuildDevices(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}}
	in.HostConfig.DeviceCgroupRules = []string{"c 42:* rmw", "a"}
	s := mustBuild(t, in)
	if len(s.Linux.Devices) != 1 {
		t.Fatalf("devices %+v", s.Linux.Devices)
	}
	d := s.Linux.Devices[0]
	if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 || d.FileMode == nil {
		t.Errorf("device %+v", d)
	}
	rules := s.Linux.Resources.Devices
	n := len(DefaultDeviceRules())
	if len(rules) != n+3 {
		t.Fatalf("rules %+v", rules)
	}
	want := []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Major: p64(1), Minor: p64(3), Access: "rw"},
		{Allow: true, Type: "c", Major: p64(42), Minor: p64(-1), Access: "rmw"},
		{Allow: true, Type: "a", Major: p64(-1), Minor: p64(-1), Access: "rwm"},
	}
	for i, w := range want {
		g := rules[n+i]
		if g.Allow != w.Allow || g.Type != w.Type || *g.Major != *w.Major || *g.Minor != *w.Minor || g.Access != w.Access {
			t.Errorf("rule %d = %+v (%d:%d), want %+v (%d:%d)", i, g, *g.Major, *g.Minor, w, *w.Major, *w.Minor)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"0": {0}, "0-2": {0, 1, 2}, "0,3-4": {0, 3, 4}, "": nil, "a": nil, "3-1": nil, "-1": nil} {
		if got := parseCPUList(in); !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, want %v", in, got, want)
		}
	}
}
