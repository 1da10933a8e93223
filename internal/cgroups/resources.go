package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	occgroups "github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
)

// resources translates the OCI resources into the driver's model, which
// keeps v1 semantics for every value (memory.swap is memory+swap, cpu shares,
// blkio weight) and converts to v2 files itself: memory.swap.max = swap -
// memory, cpu.weight from shares, io.weight from the blkio weight. cpuDir is
// the cgroup's cpu directory, used to see whether realtime scheduling
// (CONFIG_RT_GROUP_SCHED) is available; "" skips that check.
func resources(r *specs.LinuxResources, v2 bool, cpuDir string) (*occgroups.Resources, error) {
	out := &occgroups.Resources{}

	// Devices: without rules the current ones stay; the spec's list is
	// complete otherwise (it starts with a deny-all for containers).
	if len(r.Devices) == 0 {
		out.SkipDevices = true
	}
	for i, d := range r.Devices {
		rule, err := deviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		out.Devices = append(out.Devices, rule)
	}

	if m := r.Memory; m != nil {
		out.Memory = deref(m.Limit)
		out.MemoryReservation = deref(m.Reservation)
		out.MemorySwap = deref(m.Swap)
		out.MemorySwappiness = m.Swappiness
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("memory swappiness %d is not in 0-100", *m.Swappiness))
		}
		if m.DisableOOMKiller != nil {
			out.OomKillDisable = *m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			out.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
		// Kernel and KernelTCP are deprecated and ignored, as by runc.
		if out.Memory > 0 && out.MemorySwap > 0 && out.MemorySwap < out.Memory {
			return nil, errdefs.InvalidParameter(fmt.Errorf("memory+swap limit %d is below the memory limit %d", out.MemorySwap, out.Memory))
		}
	}

	if c := r.CPU; c != nil {
		out.CpuShares = deref(c.Shares)
		if v2 && out.CpuShares != 0 {
			// fs2 leaves this conversion to its caller.
			out.CpuWeight = occgroups.ConvertCPUSharesToCgroupV2Value(out.CpuShares)
		}
		out.CpuQuota = deref(c.Quota)
		out.CpuPeriod = deref(c.Period)
		out.CpuBurst = c.Burst
		out.CpusetCpus = c.Cpus
		out.CpusetMems = c.Mems
		out.CPUIdle = c.Idle
		out.CpuRtRuntime = deref(c.RealtimeRuntime)
		out.CpuRtPeriod = deref(c.RealtimePeriod)
		if out.CpuRtRuntime != 0 || out.CpuRtPeriod != 0 {
			if !realtimeSupported(v2, cpuDir) {
				slog.Warn("cgroup: realtime CPU limits are not supported by this kernel; ignored",
					"rtRuntime", out.CpuRtRuntime, "rtPeriod", out.CpuRtPeriod)
				out.CpuRtRuntime, out.CpuRtPeriod = 0, 0
			}
		}
	}

	if p := r.Pids; p != nil && p.Limit != nil {
		// Docker's API says 0 and -1 mean unlimited; the driver writes
		// "max" for negative values (and "1" for 0, systemd's way).
		limit := *p.Limit
		if limit <= 0 {
			limit = -1
		}
		out.PidsLimit = &limit
	}

	if b := r.BlockIO; b != nil {
		out.BlkioWeight = deref(b.Weight)
		out.BlkioLeafWeight = deref(b.LeafWeight)
		for _, wd := range b.WeightDevice {
			out.BlkioWeightDevice = append(out.BlkioWeightDevice,
				occgroups.NewWeightDevice(wd.Major, wd.Minor, deref(wd.Weight), deref(wd.LeafWeight)))
		}
		out.BlkioThrottleReadBpsDevice = throttle(b.ThrottleReadBpsDevice)
		out.BlkioThrottleWriteBpsDevice = throttle(b.ThrottleWriteBpsDevice)
		out.BlkioThrottleReadIOPSDevice = throttle(b.ThrottleReadIOPSDevice)
		out.BlkioThrottleWriteIOPSDevice = throttle(b.ThrottleWriteIOPSDevice)
	}

	for _, h := range r.HugepageLimits {
		out.HugetlbLimit = append(out.HugetlbLimit, &occgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}

	if n := r.Network; n != nil {
		if v2 {
			return nil, errdefs.InvalidParameter(errors.New("network class and priorities need cgroup v1 (net_cls, net_prio)"))
		}
		out.NetClsClassid = deref(n.ClassID)
		for _, p := range n.Priorities {
			out.NetPrioIfpriomap = append(out.NetPrioIfpriomap, &occgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}

	if len(r.Rdma) > 0 {
		out.Rdma = make(map[string]occgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			out.Rdma[dev] = occgroups.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}

	if len(r.Unified) > 0 {
		if !v2 {
			return nil, errdefs.InvalidParameter(errors.New("unified resources need cgroup v2; this host runs v1"))
		}
		out.Unified = r.Unified
	}
	return out, nil
}

// deviceRule translates one spec device rule. Missing major or minor is a
// wildcard, a missing type is "a" (all), missing access is "rwm".
func deviceRule(d specs.LinuxDeviceCgroup) (*devices.Rule, error) {
	rule := &devices.Rule{
		Type:        devices.WildcardDevice,
		Major:       devices.Wildcard,
		Minor:       devices.Wildcard,
		Permissions: devices.Permissions(d.Access),
		Allow:       d.Allow,
	}
	if d.Type != "" {
		if len(d.Type) != 1 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid device type %q", d.Type))
		}
		rule.Type = devices.Type(d.Type[0])
	}
	if !rule.Type.CanCgroup() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid device type %q (want a, b or c)", d.Type))
	}
	if d.Major != nil {
		rule.Major = *d.Major
	}
	if d.Minor != nil {
		rule.Minor = *d.Minor
	}
	if rule.Permissions == "" {
		rule.Permissions = "rwm"
	}
	if !rule.Permissions.IsValid() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid device access %q (letters r, w, m)", d.Access))
	}
	return rule, nil
}

func throttle(in []specs.LinuxThrottleDevice) []*occgroups.ThrottleDevice {
	var out []*occgroups.ThrottleDevice
	for _, t := range in {
		out = append(out, occgroups.NewThrottleDevice(t.Major, t.Minor, t.Rate))
	}
	return out
}

// realtimeSupported: cgroup v2 has no realtime knobs; on v1 they exist only
// with CONFIG_RT_GROUP_SCHED.
func realtimeSupported(v2 bool, cpuDir string) bool {
	if v2 {
		return false
	}
	if cpuDir == "" {
		return true
	}
	// The cgroup may not exist yet; its mount root has the same files.
	for dir := cpuDir; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "cpu.rt_runtime_us")); err == nil {
			return true
		}
		if _, err := os.Stat(filepath.Join(dir, "cpu.shares")); err == nil {
			return false // a cpu cgroup directory without the realtime files
		}
	}
	return false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
