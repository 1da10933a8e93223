package specgen

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the CFS period used to express --cpus (100ms, as Docker).
const cpuPeriod = 100000

// minMemory is Docker's smallest accepted memory limit.
const minMemory = 6 << 20

// swapAccounting reports whether the host can limit swap (cgroup v1 needs
// memory.memsw.*; v2 always can). Without it Docker ignores --memory-swap
// and so does berth. A variable so tests can pin it.
var swapAccounting = sync.OnceValue(func() bool {
	if cgroupV2() {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
})

// resources translates the cgroup limits of HostConfig.Resources, with
// Docker's validation and defaults.
func (b *builder) resources() error {
	r := b.hc.Resources
	res := &specs.LinuxResources{}

	mem, err := memoryResources(r)
	if err != nil {
		return err
	}
	res.Memory = mem

	cpu, err := cpuResources(r)
	if err != nil {
		return err
	}
	res.CPU = cpu

	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			// The API takes 0 and negatives as "unlimited"; runtimes want -1.
			limit = -1
		}
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}

	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return errdefs.InvalidParameter(errors.New("Range of blkio weight is from 10 to 1000"))
		}
		w := r.BlkioWeight
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	if len(r.BlkioWeightDevice)+len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) > 0 {
		if res.BlockIO == nil {
			res.BlockIO = &specs.LinuxBlockIO{}
		}
		if err := blkioDevices(r, res.BlockIO); err != nil {
			return err
		}
	}
	if r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0 {
		return errdefs.NotImplemented(errors.New("realtime CPU scheduling limits are not supported yet"))
	}
	if len(r.DeviceRequests) > 0 {
		return errdefs.NotImplemented(errors.New("device requests (--gpus) are not supported"))
	}
	b.spec.Linux.Resources = res
	return nil
}

// The validation messages are Docker's, word for word: clients and scripts
// match on them.
func memoryResources(r container.Resources) (*specs.LinuxMemory, error) {
	if r.Memory != 0 && r.Memory < minMemory {
		return nil, errdefs.InvalidParameter(errors.New("Minimum memory limit allowed is 6MB"))
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return nil, errdefs.InvalidParameter(errors.New("You should always set the Memory limit when using Memoryswap limit, see usage"))
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return nil, errdefs.InvalidParameter(errors.New("Minimum memoryswap limit should be larger than memory limit, see usage"))
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < minMemory {
		return nil, errdefs.InvalidParameter(errors.New("Minimum memory reservation allowed is 6MB"))
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return nil, errdefs.InvalidParameter(errors.New("Minimum memory limit can not be less than memory reservation limit, see usage"))
	}
	var m specs.LinuxMemory
	set := false
	if r.Memory > 0 {
		limit := r.Memory
		m.Limit = &limit
		set = true
	}
	if r.MemoryReservation > 0 {
		res := r.MemoryReservation
		m.Reservation = &res
		set = true
	}
	swap := r.MemorySwap
	if swap == 0 && r.Memory > 0 {
		// Docker's default: as much swap as memory (memory+swap = 2×memory).
		swap = r.Memory * 2
	}
	if swap != 0 && swapAccounting() {
		m.Swap = &swap
		set = true
	}
	if s := r.MemorySwappiness; s != nil && *s != -1 {
		if *s < 0 || *s > 100 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("Invalid value: %d, valid memory swappiness range is 0-100", *s))
		}
		v := uint64(*s)
		m.Swappiness = &v
		set = true
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		m.DisableOOMKiller = &v
		set = true
	}
	if !set {
		return nil, nil
	}
	return &m, nil
}

func cpuResources(r container.Resources) (*specs.LinuxCPU, error) {
	if r.NanoCPUs > 0 && (r.CPUPeriod > 0 || r.CPUQuota > 0) {
		return nil, errdefs.InvalidParameter(errors.New("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set"))
	}
	if r.NanoCPUs < 0 {
		return nil, errdefs.InvalidParameter(errors.New("invalid value: NanoCPUs can not be negative"))
	}
	if n := int64(runtime.NumCPU()); r.NanoCPUs > n*1e9 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n))
	}
	if r.CPUShares < 0 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares))
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return nil, errdefs.InvalidParameter(errors.New("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"))
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return nil, errdefs.InvalidParameter(errors.New("CPU cfs quota can not be less than 1ms (i.e. 1000)"))
	}
	for _, s := range []struct{ name, val string }{{"cpuset-cpus", r.CpusetCpus}, {"cpuset-mems", r.CpusetMems}} {
		if s.val != "" && parseCPUList(s.val) == nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid value %q for %s", s.val, s.name))
		}
	}
	var c specs.LinuxCPU
	set := false
	if r.CPUShares > 0 {
		v := uint64(r.CPUShares)
		c.Shares = &v
		set = true
	}
	if r.NanoCPUs > 0 {
		period := uint64(cpuPeriod)
		quota := r.NanoCPUs * cpuPeriod / 1e9
		c.Period, c.Quota = &period, &quota
		set = true
	}
	if r.CPUPeriod != 0 {
		period := uint64(r.CPUPeriod)
		c.Period = &period
		set = true
	}
	if r.CPUQuota != 0 {
		quota := r.CPUQuota
		c.Quota = &quota
		set = true
	}
	if r.CpusetCpus != "" {
		c.Cpus = r.CpusetCpus
		set = true
	}
	if r.CpusetMems != "" {
		c.Mems = r.CpusetMems
		set = true
	}
	if !set {
		return nil, nil
	}
	return &c, nil
}

// rlimitNames are the ulimit names Docker accepts (go-units), each mapped to
// RLIMIT_<NAME>.
var rlimitNames = []string{"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// rlimits converts --ulimit values. Docker sets no rlimit of its own, so
// without --ulimit the container inherits the runtime's.
func rlimits(ulimits []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, u := range ulimits {
		if u == nil {
			continue
		}
		name := strings.ToLower(u.Name)
		known := false
		for _, n := range rlimitNames {
			known = known || n == name
		}
		if !known {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid ulimit type: %s", u.Name))
		}
		if seen[name] {
			return nil, errdefs.InvalidParameter(fmt.Errorf("duplicate ulimit: %s", u.Name))
		}
		seen[name] = true
		if u.Soft > u.Hard && u.Hard != -1 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard))
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return out, nil
}

// namespacedSysctls are the kernel.* sysctls that belong to the IPC
// namespace; fs.mqueue.* does too. net.* belongs to the network namespace.
var namespacedSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// sysctls adds Docker's default network sysctls for a private network
// namespace, then the user's, which must be namespaced and must belong to a
// namespace the container owns.
func (b *builder) sysctls() error {
	if b.hasNamespace(specs.NetworkNamespace) {
		// Unprivileged ICMP echo sockets and low ports without extra
		// capabilities, as Docker (when the kernel has the knobs).
		if sysctlExists("net.ipv4.ping_group_range") {
			b.spec.Linux.Sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if sysctlExists("net.ipv4.ip_unprivileged_port_start") {
			b.spec.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
	}
	for k, v := range b.hc.Sysctls {
		if err := b.checkSysctl(k); err != nil {
			return err
		}
		b.spec.Linux.Sysctl[k] = v
	}
	return nil
}

func (b *builder) checkSysctl(k string) error {
	ipc := strings.HasPrefix(k, "fs.mqueue.")
	for _, n := range namespacedSysctls {
		ipc = ipc || k == n
	}
	switch {
	case ipc:
		if !b.hasNamespace(specs.IPCNamespace) {
			return errdefs.InvalidParameter(fmt.Errorf("sysctl %q is not allowed in the host's IPC namespace", k))
		}
	case strings.HasPrefix(k, "net."):
		if !b.hasNamespace(specs.NetworkNamespace) {
			return errdefs.InvalidParameter(fmt.Errorf("sysctl %q is not allowed in the host's network namespace", k))
		}
	case k == "kernel.domainname" || k == "kernel.hostname":
		if !b.hasNamespace(specs.UTSNamespace) {
			return errdefs.InvalidParameter(fmt.Errorf("sysctl %q is not allowed in the host's UTS namespace", k))
		}
	default:
		return errdefs.InvalidParameter(fmt.Errorf("sysctl %q is not allowed: only namespaced sysctls (net.*, fs.mqueue.*, kernel.shm*, kernel.msg*, kernel.sem) can be set", k))
	}
	return nil
}

// sysctlExists reports whether the kernel has the named sysctl. A variable
// so tests can pin it.
var sysctlExists = func(name string) bool {
	_, err := os.Stat("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	return err == nil
}
