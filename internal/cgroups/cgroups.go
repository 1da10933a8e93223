// Package cgroups puts a container's processes in a control group and sets
// its resource limits, on cgroup v1 and v2 behind one Manager, using
// github.com/opencontainers/cgroups (its fs and fs2 drivers, and its devices
// package, which builds the v2 eBPF device filter in pure Go).
//
// Lifecycle, as the runtime uses it:
//
//	m, err := cgroups.New(spec.Linux.CgroupsPath, id) // computes paths, creates nothing
//	m.Apply(initPid)                                 // creates the cgroup(s), moves the process in
//	m.Set(spec.Linux.Resources)                      // writes the limits
//	... m.Stats(), m.Freeze()/m.Thaw() (pause/unpause), m.Pids() ...
//	m.Destroy()                                      // once every process has exited
//
// After a daemon restart, Load finds the cgroup of a running container again.
//
// A host in "hybrid" mode (v1 controllers, plus a controller-less cgroup2
// mount at /sys/fs/cgroup/unified) is a v1 host.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	occgroups "github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // registers the device-rule writers for v1 and v2
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// Manager controls the cgroup of one container.
type Manager interface {
	// Apply creates the cgroup if needed and moves pid into it.
	Apply(pid int) error
	// Set writes the limits in r. Nil fields are left as they are. An
	// error names the cgroup file and the value the kernel refused.
	Set(r *specs.LinuxResources) error
	// Stats reads the cgroup's resource usage.
	Stats() (*Stats, error)
	// Freeze stops every process in the cgroup; Thaw resumes them.
	Freeze() error
	Thaw() error
	// Pids lists the processes in the cgroup and its descendants.
	Pids() ([]int, error)
	// Destroy removes the cgroup; it must hold no process any more.
	Destroy() error
	// Path is the directory of the cgroup for a v1 subsystem ("memory",
	// "cpu", ...); on v2 the single unified directory for any name.
	Path(subsystem string) string
}

// IsV2 reports whether the host runs the unified cgroup v2 hierarchy.
func IsV2() bool { return occgroups.IsCgroup2UnifiedMode() }

// New returns a Manager for the cgroup at cgroupsPath (the OCI spec's
// linux.cgroupsPath: absolute is below the hierarchy roots, relative is below
// the caller's own cgroup), or "/berth/<id>" when it is empty. Nothing is
// created until Apply.
func New(cgroupsPath, id string) (Manager, error) {
	return newManager(cgroupsPath, id)
}

// Load returns the Manager of an existing cgroup, made earlier by New and
// Apply with the same arguments; a NotFound error if it does not exist.
func Load(cgroupsPath, id string) (Manager, error) {
	m, err := newManager(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	if !m.m.Exists() {
		return nil, errdefs.NotFound(fmt.Errorf("cgroup %s of container %s does not exist", m.path, id))
	}
	return m, nil
}

// manager adapts an opencontainers/cgroups manager to Manager.
type manager struct {
	path string // the cgroup path, as in the spec
	v2   bool
	cg   *occgroups.Cgroup
	m    occgroups.Manager
}

func newManager(cgroupsPath, id string) (*manager, error) {
	p, err := cgroupPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	cg := &occgroups.Cgroup{
		Path: p,
		// Apply needs non-nil Resources (it writes no limits from them).
		Resources: &occgroups.Resources{},
	}
	m := &manager{path: p, v2: IsV2(), cg: cg}
	if m.v2 {
		m.m, err = fs2.NewManager(cg, "")
	} else {
		m.m, err = fs.NewManager(cg, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", p, err)
	}
	return m, nil
}

// cgroupPath validates the spec's cgroupsPath and applies the default.
func cgroupPath(cgroupsPath, id string) (string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.Contains(id, "/") || id == "." || id == ".." {
			return "", errdefs.InvalidParameter(fmt.Errorf("cgroup: invalid container id %q", id))
		}
		return "/berth/" + id, nil
	}
	if strings.Contains(cgroupsPath, ":") {
		// "slice:prefix:name" is the systemd driver's syntax.
		return "", errdefs.InvalidParameter(fmt.Errorf("cgroup path %q: systemd cgroup paths are not supported, use a cgroupfs path", cgroupsPath))
	}
	for _, part := range strings.Split(cgroupsPath, "/") {
		if part == ".." {
			return "", errdefs.InvalidParameter(fmt.Errorf("cgroup path %q must not contain \"..\"", cgroupsPath))
		}
	}
	if path.Clean("/"+cgroupsPath) == "/" {
		return "", errdefs.InvalidParameter(fmt.Errorf("cgroup path %q is the root cgroup", cgroupsPath))
	}
	return cgroupsPath, nil
}

func (m *manager) Apply(pid int) error {
	if err := m.m.Apply(pid); err != nil {
		return fmt.Errorf("cgroup %s: adding process %d: %w", m.path, pid, err)
	}
	return nil
}

func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	res, err := resources(r, m.v2, m.m.Path("cpu"))
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", m.path, err)
	}
	if err := m.m.Set(res); err != nil {
		err = fmt.Errorf("cgroup %s: setting resources: %w", m.path, err)
		if refused(err) {
			return errdefs.InvalidParameter(err)
		}
		return err
	}
	return nil
}

// refused tells a value the kernel rejected (a user error) from a failure.
func refused(err error) bool {
	var pe *os.PathError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Op == "write" && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE))
}

func (m *manager) Freeze() error {
	if err := m.m.Freeze(occgroups.Frozen); err != nil {
		return fmt.Errorf("cgroup %s: freezing: %w", m.path, err)
	}
	return nil
}

func (m *manager) Thaw() error {
	if err := m.m.Freeze(occgroups.Thawed); err != nil {
		return fmt.Errorf("cgroup %s: thawing: %w", m.path, err)
	}
	return nil
}

func (m *manager) Pids() ([]int, error) {
	pids, err := m.m.GetAllPids()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: listing processes: %w", m.path, err)
	}
	return pids, nil
}

func (m *manager) Destroy() error {
	if err := m.m.Destroy(); err != nil {
		return fmt.Errorf("cgroup %s: removing: %w", m.path, err)
	}
	return nil
}

func (m *manager) Path(subsystem string) string { return m.m.Path(subsystem) }
