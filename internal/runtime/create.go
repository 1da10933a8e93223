package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
	"berth/internal/errdefs"
	"berth/internal/nsinit"
)

// CreateOpts are the inputs of Create.
type CreateOpts struct {
	// Bundle is the bundle directory; relative root and bind sources are
	// resolved against it.
	Bundle string
	// Spec, if nil, is read from Bundle/config.json.
	Spec *specs.Spec
	IO   IO
	// PidFile, if set, receives the init's pid.
	PidFile string
	// PreserveFDs passes the caller's fds 3..3+n-1 to the container as is.
	PreserveFDs int
	// ExtraFiles follow the preserved fds in the container.
	ExtraFiles   []*os.File
	NoPivot      bool
	NoNewKeyring bool
}

var cloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// Create sets up the container and leaves its init waiting for Start. The
// init is a child of the caller, who must reap it (wait4) when it exits.
func (r *Runtime) Create(id string, o CreateOpts) (pid int, retErr error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return 0, errdefs.InvalidParameter(err)
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return 0, err
		}
	}
	if err := Validate(spec); err != nil {
		return 0, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if real, err := filepath.EvalSymlinks(rootfs); err == nil {
		rootfs = real
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return 0, errdefs.InvalidParameter(fmt.Errorf("rootfs %s: %w", rootfs, err))
	}

	var keepMounts []int
	if !hasNamespace(spec, specs.MountNamespace) {
		// The init will mount in our namespace: note what is there now.
		if keepMounts, err = mountsUnder(rootfs); err != nil {
			return 0, err
		}
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if os.IsExist(err) {
			return 0, errdefs.Conflict(fmt.Errorf("container %q already exists", id))
		}
		return 0, fmt.Errorf("create state dir for %s: %w", id, err)
	}
	var cg cgroups.Manager
	defer func() {
		if retErr != nil {
			if cg != nil {
				_ = cg.Destroy()
			}
			if !hasNamespace(spec, specs.MountNamespace) {
				// The init (killed and reaped by now) mounted in our
				// mount namespace; nothing else would unmount.
				if err := unmountUnder(rootfs, keepMounts); err != nil {
					slog.Warn("failed create: unmount the rootfs", "id", id, "err", err)
				}
			}
			os.RemoveAll(dir)
		}
	}()
	fifo := filepath.Join(dir, "exec.fifo")
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return 0, fmt.Errorf("create %s: %w", fifo, err)
	}
	_ = os.Chmod(fifo, 0o622) // undo the umask: a non-root init must open it
	stateDir, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer stateDir.Close()

	st := &state{
		State: specs.State{
			Version: specs.Version, ID: id, Status: specs.StateCreating,
			Bundle: bundle, Annotations: spec.Annotations,
		},
		Created:     time.Now().UTC(),
		Rootfs:      rootfs,
		CgroupsPath: spec.Linux.CgroupsPath,
		Spec:        spec,
		KeepMounts:  keepMounts,
	}
	cfg := &nsinit.Config{
		Mode: nsinit.ModeInit, ID: id, Bundle: bundle, Rootfs: rootfs,
		Spec: spec, Process: spec.Process,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		State: st.State,
	}
	l := &launch{cfg: cfg, io: o.IO, stateDir: stateDir}

	for i := 0; i < o.PreserveFDs; i++ {
		l.passFiles = append(l.passFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	l.passFiles = append(l.passFiles, o.ExtraFiles...)

	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path == "" && ns.Type == specs.CgroupNamespace:
			// After the parent placed the init in its cgroup, or the
			// namespace's root would be the caller's cgroup.
			cfg.UnshareCgroupNS = true
		case ns.Path == "":
			l.cloneflags |= cloneFlags[ns.Type]
		case ns.Type == specs.PIDNamespace:
			l.pidNS = ns.Path
		case ns.Type == specs.UserNamespace:
			// Joined first, by the userns helper (see usernshelper.go).
			if !usernsHelperSupported() {
				return 0, errdefs.NotImplemented(fmt.Errorf("joining the user namespace %s: Go cannot setns a "+
					"multi-threaded process into one, and berth has no user namespace helper for %s", ns.Path, goruntime.GOARCH))
			}
			f, err := os.Open(ns.Path)
			if err != nil {
				return 0, errdefs.InvalidParameter(fmt.Errorf("user namespace path: %w", err))
			}
			defer f.Close()
			l.userNS = f
		default:
			f, err := os.Open(ns.Path)
			if err != nil {
				return 0, errdefs.InvalidParameter(fmt.Errorf("%s namespace path: %w", ns.Type, err))
			}
			defer f.Close()
			l.joinFiles = append(l.joinFiles, f)
			cfg.Namespaces = append(cfg.Namespaces, nsinit.JoinNS{Type: ns.Type})
		}
		switch ns.Type {
		case specs.UTSNamespace:
			cfg.NewUTS = true
		case specs.UserNamespace:
			cfg.UserNS = true
		}
	}
	cfg.HostMountNS = !hasNamespace(spec, specs.MountNamespace)
	if l.userNS != nil {
		// Namespaces created by clone would belong to our user namespace,
		// not the joined one: the child unshares them after joining it.
		cfg.Unshare = int(l.cloneflags)
		l.cloneflags = 0
	}
	if l.cloneflags&unix.CLONE_NEWUSER != 0 {
		for _, m := range spec.Linux.UIDMappings {
			l.uidMaps = append(l.uidMaps, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			l.gidMaps = append(l.gidMaps, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
	}

	cg, err = cgroups.New(spec.Linux.CgroupsPath, id)
	if err != nil {
		return 0, fmt.Errorf("cgroups for %s: %w", id, err)
	}
	l.cgroup = cg
	l.ready = func(int) error {
		if spec.Linux.Resources == nil {
			return nil
		}
		if err := cg.Set(withDefaultDevices(spec.Linux.Resources, spec.Linux.Devices)); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("set resources of %s: %w", id, err))
		}
		return nil
	}
	if h := spec.Hooks; h != nil && (len(h.CreateRuntime) > 0 || len(h.Prestart) > 0) { //nolint:staticcheck // prestart is deprecated but still honoured
		cfg.RuntimeHooks = true
		l.onHooks = func(pid int) error {
			hs := st.State
			hs.Pid = pid
			if err := nsinit.RunHooks("prestart", h.Prestart, hs); err != nil { //nolint:staticcheck
				return err
			}
			return nsinit.RunHooks("createRuntime", h.CreateRuntime, hs)
		}
	}

	proc, err := r.start(l)
	if err != nil {
		return 0, err
	}
	pid = proc.Pid
	_, st.InitStart, _ = procStat(pid)
	st.Pid = pid
	st.Status = specs.StateCreated
	if err := r.save(st); err == nil {
		err = writePidFile(o.PidFile, pid)
	}
	if err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		return 0, err
	}
	_ = proc.Release() // the caller reaps it
	return pid, nil
}

// Start lets a created container's init exec the user process.
func (r *Runtime) Start(id string) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if st.Status != specs.StateCreated {
		return errdefs.Conflict(fmt.Errorf("cannot start container %s: it is %s, not created", id, st.Status))
	}
	fifo := filepath.Join(r.dir(id), "exec.fifo")
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", fifo, err)
	}
	defer unix.Close(fd)
	// Our open lets the init's blocking open(O_WRONLY) through; it then
	// writes one byte and keeps the fifo open until its execve, so EOF
	// after the byte means the user program runs (or the init died). Poll
	// with a timeout to notice an init that died before opening it.
	got := false
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 50)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("wait for init of %s: %w", id, err)
		}
		if n > 0 {
			buf := make([]byte, 1)
			k, _ := unix.Read(fd, buf)
			if k == 1 && !got {
				got = true
				// From here the state is "running": the fifo goes.
				// A process that exits at once can be reaped and its
				// state deleted by the caller before we get here.
				if err := os.Remove(fifo); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("remove %s: %w", fifo, err)
				}
			}
			if k == 0 && got {
				break // the writer closed: the init exec'd or died
			}
		}
		if !got && !processAlive(st.Pid, st.InitStart) {
			return errdefs.Conflict(fmt.Errorf("cannot start container %s: its init has exited", id))
		}
	}
	if h := st.Spec.Hooks; h != nil && len(h.Poststart) > 0 {
		hs := st.State
		hs.Status = specs.StateRunning
		// The spec: log a warning; the other hooks and the lifecycle go on.
		for _, err := range nsinit.RunHooksWarn("poststart", h.Poststart, hs) {
			slog.Warn("poststart hook failed", "id", id, "err", err)
		}
	}
	return nil
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// LoadSpec reads bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errdefs.InvalidParameter(fmt.Errorf("bundle %s has no config.json", bundle))
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid %s: %w", p, err))
	}
	return &s, nil
}

// defaultDeviceRules are allowed in the device cgroup of every container,
// as runc does: the nodes every /dev has, the pty multiplexer and ptys.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(7)), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(8)), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(9)), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(0)), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(1)), Access: "rwm"},    // console
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(2)), Access: "rwm"},    // ptmx
	{Allow: true, Type: "c", Major: ptr(int64(136)), Minor: ptr(int64(-1)), Access: "rwm"}, // pts/*
}

func ptr[T any](v T) *T { return &v }

// withDefaultDevices appends the default device rules (and the spec's own
// devices) after the spec's rules when it restricts devices at all.
func withDefaultDevices(r *specs.LinuxResources, devs []specs.LinuxDevice) *specs.LinuxResources {
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	out := *r
	out.Devices = append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), defaultDeviceRules...)
	for _, d := range devs {
		t := d.Type
		switch t {
		case "u":
			t = "c"
		case "p":
			continue // a fifo: the device cgroup knows only b and c
		}
		out.Devices = append(out.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: t, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: "rwm"})
	}
	return &out
}
