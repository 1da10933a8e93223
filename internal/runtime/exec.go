package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
	"berth/internal/errdefs"
	"berth/internal/nsinit"
)

// ExecOpts are the inputs of Exec.
type ExecOpts struct {
	Process *specs.Process
	IO      IO
	// PidFile, if set, receives the process's pid.
	PidFile string
	// ExtraFiles become the process's fds 3, 4, ...
	ExtraFiles []*os.File
}

// execOrder is the order namespaces are entered; mount last (it changes
// the root), pid by the parent (it only affects children).
var execOrder = []specs.LinuxNamespaceType{
	specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
	specs.CgroupNamespace, specs.MountNamespace,
}

// Exec runs another process in a running (or created) container. The
// process is a child of the caller, who reaps it.
func (r *Runtime) Exec(id string, o ExecOpts) (int, error) {
	st, err := r.load(id)
	if err != nil {
		return 0, err
	}
	if st.Status != specs.StateRunning && st.Status != specs.StateCreated {
		return 0, errdefs.Conflict(fmt.Errorf("cannot exec in container %s: it is %s", id, st.Status))
	}
	if err := validateProcess(o.Process); err != nil {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid process: %w", err))
	}
	has := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range st.Spec.Linux.Namespaces {
		has[ns.Type] = true
	}
	if has[specs.UserNamespace] && !usernsHelperSupported() {
		return 0, errdefs.NotImplemented(fmt.Errorf("exec in container %s: it has a user namespace, and Go cannot "+
			"setns a multi-threaded process into one (berth has no user namespace helper for %s)", id, goruntime.GOARCH))
	}

	cfg := &nsinit.Config{
		Mode: nsinit.ModeExec, ID: id, Bundle: st.Bundle,
		Spec: st.Spec, Process: o.Process, State: st.State,
	}
	l := &launch{cfg: cfg, io: o.IO, passFiles: o.ExtraFiles}
	// Open every namespace now, then check the init is still the one we
	// know: the fds pin the namespaces even if the pid were reused.
	proc := "/proc/" + strconv.Itoa(st.Pid) + "/ns/"
	for _, t := range execOrder {
		if !has[t] {
			continue
		}
		f, err := os.Open(proc + nsFile(t))
		if err != nil {
			return 0, fmt.Errorf("open %s namespace of %s: %w", t, id, err)
		}
		defer f.Close()
		l.joinFiles = append(l.joinFiles, f)
		cfg.Namespaces = append(cfg.Namespaces, nsinit.JoinNS{Type: t})
	}
	if has[specs.UserNamespace] {
		// Joined first, by the userns helper: the other namespaces are
		// owned by it, and joining them needs capabilities there.
		f, err := os.Open(proc + "user")
		if err != nil {
			return 0, fmt.Errorf("open user namespace of %s: %w", id, err)
		}
		defer f.Close()
		l.userNS = f
		cfg.UserNS = true
	}
	if has[specs.PIDNamespace] {
		l.pidNS = proc + "pid"
	}
	if !has[specs.MountNamespace] {
		// No mount namespace to join: the init's root is a chroot in ours.
		root, err := os.OpenFile("/proc/"+strconv.Itoa(st.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open the root of %s: %w", id, err)
		}
		defer root.Close()
		l.rootFile = root
	}
	if !processAlive(st.Pid, st.InitStart) {
		return 0, errdefs.Conflict(fmt.Errorf("cannot exec in container %s: it has stopped", id))
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return 0, fmt.Errorf("cgroups of %s: %w", id, err)
	}
	l.cgroup = cg

	p, err := r.start(l)
	if err != nil {
		return 0, err
	}
	if err := writePidFile(o.PidFile, p.Pid); err != nil {
		_ = p.Kill()
		_, _ = p.Wait()
		return 0, err
	}
	pid := p.Pid
	_ = p.Release()
	return pid, nil
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	}
	return string(t)
}

var errStopped = errors.New("container is not running")

var _ = unix.SIGKILL
