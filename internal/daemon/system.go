package daemon

import (
	"context"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
)

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func operatingSystem() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// Info serves /info.
func (d *Daemon) Info(ctx context.Context) (*system.Info, error) {
	var running, paused, stopped int
	d.mu.Lock()
	total := len(d.containers)
	for _, c := range d.containers {
		c.mu.Lock()
		switch c.State.Status {
		case container.StateRunning, container.StateRestarting:
			running++
		case container.StatePaused:
			paused++
		default:
			stopped++
		}
		c.mu.Unlock()
	}
	d.mu.Unlock()
	imgs, _ := d.images.List()
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	host, _ := os.Hostname()
	cgv := "1"
	if cgroups.IsV2() {
		cgv = "2"
	}
	return &system.Info{
		ID: d.daemonID(), Containers: total, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: stopped,
		Images: len(imgs), Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		Plugins:     system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "none"}, Log: []string{"json-file"}},
		MemoryLimit: true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
		OomKillDisable: true, NGoroutines: goruntime.NumGoroutine(), SystemTime: time.Now().Format(time.RFC3339Nano),
		LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: cgv,
		KernelVersion: kernelVersion(), OperatingSystem: operatingSystem(), OSType: "linux", Architecture: goArchToUname(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               goruntime.NumCPU(), MemTotal: int64(si.Totalram) * int64(si.Unit),
		DockerRootDir: d.cfg.DataRoot, Name: host, Labels: []string{}, ServerVersion: d.cfg.Version,
		Runtimes:       map[string]system.RuntimeWithStatus{"berth": {Runtime: system.Runtime{Path: d.cfg.Exe}}},
		DefaultRuntime: "berth", Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		InitBinary: "berth-init", SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Warnings: []string{},
	}, nil
}

func goArchToUname() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return goruntime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// daemonID is a stable random identity kept in the data root.
func (d *Daemon) daemonID() string {
	p := d.cfg.DataRoot + "/engine-id"
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b))
	}
	id := d.newID()
	os.WriteFile(p, []byte(id+"\n"), 0o600)
	return id
}

// Version serves /version.
func (d *Daemon) Version(ctx context.Context) (*system.VersionResponse, error) {
	return &system.VersionResponse{
		Platform: system.PlatformInfo{Name: "berth"},
		Version:  d.cfg.Version, APIVersion: d.cfg.APIVersion, MinAPIVersion: d.cfg.MinAPIVersion,
		Os: goruntime.GOOS, Arch: goruntime.GOARCH, GitCommit: "berth", GoVersion: goruntime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: d.cfg.Version,
			Details: map[string]string{"ApiVersion": d.cfg.APIVersion, "MinAPIVersion": d.cfg.MinAPIVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "GoVersion": goruntime.Version(), "KernelVersion": kernelVersion(), "GitCommit": "berth"},
		}, {Name: "berth-runtime", Version: d.cfg.Version, Details: map[string]string{"GitCommit": "berth"}}},
	}, nil
}
