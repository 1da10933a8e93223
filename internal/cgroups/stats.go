package cgroups

import (
	"fmt"
	"strings"

	occgroups "github.com/opencontainers/cgroups"
)

// Stats is the resource usage of a cgroup. Byte counts are bytes, times
// nanoseconds. Values a cgroup version does not report are zero.
type Stats struct {
	Memory MemoryStats
	CPU    CPUStats
	Pids   PidsStats
	IO     IOStats
	// Hugetlb is keyed by page size as the kernel names it ("2MB", "1GB").
	Hugetlb map[string]HugetlbStats
}

// HugetlbStats is the huge page use of a cgroup for one page size.
type HugetlbStats struct {
	Usage    uint64 // bytes in use
	MaxUsage uint64 // peak (v1 only)
	Failcnt  uint64 // allocations refused by the limit
}

// MemoryStats is the memory use of a cgroup.
type MemoryStats struct {
	Usage    uint64 // current use, page cache included
	MaxUsage uint64 // peak use (v1; v2 with memory.peak)
	Limit    uint64 // the limit; a huge number when unlimited
	Cache    uint64 // page cache ("cache" on v1, "file" on v2)
	RSS      uint64 // anonymous memory ("rss" on v1, "anon" on v2)
	Swap     uint64 // swap in use
	// OOMKillCount counts processes the OOM killer killed in the cgroup.
	OOMKillCount uint64
	// Raw is memory.stat as the kernel reports it.
	Raw map[string]uint64
}

// CPUStats is the CPU time of a cgroup.
type CPUStats struct {
	TotalUsage uint64   // total CPU time consumed
	PerCPU     []uint64 // per CPU (v1 only)
	User       uint64   // in user mode
	System     uint64   // in kernel mode
	// Throttling by the CFS quota.
	Periods          uint64 // enforcement periods elapsed
	ThrottledPeriods uint64 // periods in which the cgroup was throttled
	ThrottledTime    uint64 // total time throttled
}

// PidsStats is the task count of a cgroup.
type PidsStats struct {
	Current uint64
	Limit   uint64 // 0 when unlimited
}

// IOStats counts block I/O, summed over devices.
type IOStats struct {
	ReadBytes, WriteBytes uint64
	ReadOps, WriteOps     uint64
}

func (m *manager) Stats() (*Stats, error) {
	st, err := m.m.GetStats()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: reading stats: %w", m.path, err)
	}
	out := convertStats(st, m.v2)
	if n, err := m.m.OOMKillCount(); err == nil {
		out.Memory.OOMKillCount = n
	}
	return out, nil
}

func convertStats(st *occgroups.Stats, v2 bool) *Stats {
	ms := st.MemoryStats
	out := &Stats{
		Memory: MemoryStats{
			Usage:    ms.Usage.Usage,
			MaxUsage: ms.Usage.MaxUsage,
			Limit:    ms.Usage.Limit,
			Cache:    ms.Cache,
			Raw:      ms.Stats,
		},
		CPU: CPUStats{
			TotalUsage:       st.CpuStats.CpuUsage.TotalUsage,
			PerCPU:           st.CpuStats.CpuUsage.PercpuUsage,
			User:             st.CpuStats.CpuUsage.UsageInUsermode,
			System:           st.CpuStats.CpuUsage.UsageInKernelmode,
			Periods:          st.CpuStats.ThrottlingData.Periods,
			ThrottledPeriods: st.CpuStats.ThrottlingData.ThrottledPeriods,
			ThrottledTime:    st.CpuStats.ThrottlingData.ThrottledTime,
		},
		Pids: PidsStats{Current: st.PidsStats.Current, Limit: st.PidsStats.Limit},
	}
	for size, h := range st.HugetlbStats {
		if out.Hugetlb == nil {
			out.Hugetlb = map[string]HugetlbStats{}
		}
		out.Hugetlb[size] = HugetlbStats{Usage: h.Usage, MaxUsage: h.MaxUsage, Failcnt: h.Failcnt}
	}
	if v2 {
		out.Memory.RSS = ms.Stats["anon"]
		out.Memory.Swap = ms.SwapOnlyUsage.Usage
	} else {
		out.Memory.RSS = ms.Stats["total_rss"]
		if out.Memory.RSS == 0 {
			out.Memory.RSS = ms.Stats["rss"]
		}
		// v1 reports memory+swap in memory.memsw.usage_in_bytes.
		if ms.SwapUsage.Usage > ms.Usage.Usage {
			out.Memory.Swap = ms.SwapUsage.Usage - ms.Usage.Usage
		}
	}
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			out.IO.ReadBytes += e.Value
		case "write":
			out.IO.WriteBytes += e.Value
		}
	}
	for _, e := range st.BlkioStats.IoServicedRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			out.IO.ReadOps += e.Value
		case "write":
			out.IO.WriteOps += e.Value
		}
	}
	return out
}
