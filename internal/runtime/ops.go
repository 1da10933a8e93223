package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
	"berth/internal/errdefs"
	"berth/internal/nsinit"
)

const statusPaused = specs.ContainerState("paused")

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if st.Status == specs.StateStopped {
		return errdefs.Conflict(fmt.Errorf("cannot kill container %s: %w", id, errStopped))
	}
	if all {
		return r.killAll(st, sig)
	}
	return signalInit(st, sig)
}

// signalInit signals through a pidfd whose process we re-checked, so a
// recycled pid never gets the signal.
func signalInit(st *state, sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.Conflict(fmt.Errorf("cannot signal container %s: %w", st.ID, errStopped))
		}
		return fmt.Errorf("pidfd_open %d: %w", st.Pid, err)
	}
	defer unix.Close(pfd)
	if !processAlive(st.Pid, st.InitStart) {
		return errdefs.Conflict(fmt.Errorf("cannot signal container %s: %w", st.ID, errStopped))
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %v to container %s: %w", sig, st.ID, err)
	}
	return nil
}

func (r *Runtime) killAll(st *state, sig unix.Signal) error {
	cg, err := cgroups.Load(st.CgroupsPath, st.ID)
	if err != nil {
		return fmt.Errorf("cgroups of %s: %w", st.ID, err)
	}
	// Freeze so nothing forks past us, signal, thaw so it is delivered.
	frozen := cg.Freeze() == nil
	pids, err := cg.Pids()
	if err == nil {
		for _, p := range pids {
			if p <= 1 || p == os.Getpid() {
				continue // never a process group, init of the host, or ourselves
			}
			_ = unix.Kill(p, sig)
		}
	}
	if frozen && !st.Paused {
		_ = cg.Thaw()
	} else if frozen && sig == unix.SIGKILL {
		_ = cg.Thaw()
	}
	if err != nil {
		return fmt.Errorf("list processes of %s: %w", st.ID, err)
	}
	return nil
}

// Delete removes a stopped or created container: its cgroups and state;
// then the poststop hooks run. A running or paused one needs force (which
// kills everything in it first).
func (r *Runtime) Delete(id string, force bool) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	switch st.Status {
	case specs.StateStopped:
	case specs.StateCreated:
		_ = signalInit(st, unix.SIGKILL)
		if err := waitGone(st, 5*time.Second); err != nil {
			return err
		}
	default:
		if !force {
			return errdefs.Conflict(fmt.Errorf("cannot delete container %s: it is %s (stop it first or use --force)", id, st.Status))
		}
		_ = r.killAll(st, unix.SIGKILL)
		_ = signalInit(st, unix.SIGKILL)
		if err := waitGone(st, 10*time.Second); err != nil {
			return err
		}
	}
	return r.destroy(st)
}

func (r *Runtime) destroy(st *state) error {
	cg, err := cgroups.Load(st.CgroupsPath, st.ID)
	if errdefs.IsNotFound(err) {
		err = nil // already gone: nothing to remove
	} else if err == nil {
		// The last processes of the cgroup may still be on their way out.
		for i := 0; ; i++ {
			if err = cg.Destroy(); err == nil || i == 100 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != nil {
		return fmt.Errorf("remove cgroups of %s: %w", st.ID, err)
	}
	if st.Spec.Linux != nil && !hasNamespace(st.Spec, specs.MountNamespace) {
		// Its mounts were made in our mount namespace; nothing else
		// would ever remove them.
		if err := unmountUnder(st.Rootfs, st.KeepMounts); err != nil {
			return fmt.Errorf("unmount the rootfs of %s: %w", st.ID, err)
		}
	}
	if h := st.Spec.Hooks; h != nil && len(h.Poststop) > 0 {
		hs := st.State
		hs.Status = specs.StateStopped
		for _, err := range nsinit.RunHooksWarn("poststop", h.Poststop, hs) {
			slog.Warn("poststop hook failed", "id", st.ID, "err", err)
		}
	}
	if err := os.RemoveAll(r.dir(st.ID)); err != nil {
		return fmt.Errorf("remove state of %s: %w", st.ID, err)
	}
	return nil
}

// mountsUnder returns the ids of the mounts at or below dir.
func mountsUnder(dir string) ([]int, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("mounts under %s: %w", dir, err)
	}
	ids := make([]int, len(mounts))
	for i, m := range mounts {
		ids[i] = m.ID
	}
	return ids, nil
}

// unmountUnder detaches every mount at or below dir but those in keep,
// deepest first. A mount in keep is under the ones stacked on it at the
// same path, so one detach per other mount there removes just those.
func unmountUnder(dir string, keep []int) error {
	if dir == "" || dir == "/" {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	kept := map[int]bool{}
	for _, id := range keep {
		kept[id] = true
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if kept[m.ID] {
			continue
		}
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

func waitGone(st *state, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for processAlive(st.Pid, st.InitStart) {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: init %d still alive after %v", st.ID, st.Pid, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(id string) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if st.Status != specs.StateRunning {
		return errdefs.Conflict(fmt.Errorf("cannot pause container %s: it is %s", id, st.Status))
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return err
	}
	if err := cg.Freeze(); err != nil {
		return fmt.Errorf("freeze %s: %w", id, err)
	}
	st.Paused = true
	return r.save(st)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if st.Status != statusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot resume container %s: it is %s, not paused", id, st.Status))
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return err
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("thaw %s: %w", id, err)
	}
	st.Paused = false
	return r.save(st)
}

// Processes lists the host pids of every process in the container.
func (r *Runtime) Processes(id string) ([]int, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's cgroup statistics.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if st.Status == specs.StateStopped {
		return nil, errdefs.Conflict(fmt.Errorf("container %s: %w", id, errStopped))
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Update changes the resource limits of a container.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if st.Status == specs.StateStopped {
		return errdefs.Conflict(fmt.Errorf("cannot update container %s: %w", id, errStopped))
	}
	cg, err := cgroups.Load(st.CgroupsPath, id)
	if err != nil {
		return err
	}
	if err := cg.Set(res); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("update resources of %s: %w", id, err))
	}
	st.Spec.Linux.Resources = mergeResources(st.Spec.Linux.Resources, res)
	return r.save(st)
}

func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	out := *old
	if upd.Memory != nil {
		out.Memory = upd.Memory
	}
	if upd.CPU != nil {
		out.CPU = upd.CPU
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	return &out
}
