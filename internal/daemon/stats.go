package daemon

import (
	"context"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"berth/internal/api"
)

// ContainerStats samples the container's cgroup: once per second when
// streaming; one-shot requests sample twice so precpu_stats is filled (the
// CLI computes CPU % from the difference).
func (d *Daemon) ContainerStats(ctx context.Context, name string, opts api.StatsOptions) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	var prev *container.StatsResponse
	sample := func() *container.StatsResponse {
		s := &container.StatsResponse{ID: c.ID, Name: c.Name, OSType: "linux", Read: time.Now()}
		c.mu.Lock()
		running, pid, hostNet := c.State.Running(), c.State.Pid, c.HostConfig.NetworkMode.IsHost()
		c.mu.Unlock()
		if !running {
			return s
		}
		if !hostNet && pid > 0 {
			// the host's interfaces are not the container's: dockerd
			// reports none with --network host
			if nets, err := netStats(pid); err == nil && len(nets) > 0 {
				s.Networks = nets
			}
		}
		st, err := d.rt.Stats(c.ID)
		if err != nil {
			return s
		}
		s.CPUStats = container.CPUStats{
			CPUUsage: container.CPUUsage{TotalUsage: st.CPU.TotalUsage, PercpuUsage: st.CPU.PerCPU,
				UsageInKernelmode: st.CPU.System, UsageInUsermode: st.CPU.User},
			SystemUsage: systemCPUUsage(), OnlineCPUs: uint32(goruntime.NumCPU()),
			ThrottlingData: container.ThrottlingData{Periods: st.CPU.Periods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledTime},
		}
		raw := st.Memory.Raw
		if raw == nil {
			raw = map[string]uint64{}
		}
		s.MemoryStats = container.MemoryStats{Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Limit: st.Memory.Limit, Stats: raw}
		if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > 1<<60 {
			var si unix.Sysinfo_t
			if unix.Sysinfo(&si) == nil {
				s.MemoryStats.Limit = uint64(si.Totalram) * uint64(si.Unit)
			}
		}
		s.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
		s.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "read", Value: st.IO.ReadBytes}, {Op: "write", Value: st.IO.WriteBytes},
		}}
		return s
	}
	emit := func() error {
		s := sample()
		if prev != nil {
			s.PreCPUStats, s.PreRead = prev.CPUStats, prev.Read
		}
		prev = s
		return opts.Out(s)
	}
	if !opts.Stream {
		if !opts.OneShot {
			prev = sample()
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil
			}
		}
		return emit()
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := emit(); err != nil {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// systemCPUUsage is the host's total CPU time in nanoseconds (/proc/stat),
// the denominator of docker's CPU percentage.
func systemCPUUsage() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		var total uint64
		for _, v := range f[1:8] {
			var n uint64
			for _, ch := range v {
				n = n*10 + uint64(ch-'0')
			}
			total += n
		}
		return total * (1e9 / 100) // clock ticks (USER_HZ=100) to ns
	}
	return 0
}
