package daemon

// Stopping, killing, waiting for and removing containers.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// ContainerStop sends the stop signal, then SIGKILL after the timeout.
func (d *Daemon) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if !c.State.Running() {
		c.mu.Unlock()
		return errdefs.NotModified(fmt.Errorf("container %s is already stopped", name))
	}
	c.ManualStop = true
	d.save(c)
	c.mu.Unlock()
	return d.stop(ctx, c, signal, timeout)
}

func (d *Daemon) stop(ctx context.Context, c *Container, signal string, timeout *int) error {
	c.mu.Lock()
	if signal == "" {
		signal = c.Config.StopSignal
	}
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	if c.State.Status == container.StatePaused {
		d.rt.Resume(c.ID)
		c.State.Status = container.StateRunning
	}
	if c.State.Status == container.StateRestarting && !c.starting {
		// Waiting for its restart delay, no process: the pending restart
		// sees ManualStop (or the state) and does nothing.
		c.State.Status = container.StateExited
		d.save(c)
		c.notify()
		c.mu.Unlock()
		return nil
	}
	exits := c.exits
	c.mu.Unlock()
	sig := unix.SIGTERM
	if signal != "" {
		s, err := parseSignal(signal)
		if err != nil {
			return err
		}
		sig = s
	}
	d.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := d.keeper.Kill(ctx, c.ID, int(sig), false); err != nil && !errdefs.IsConflict(err) && !errdefs.IsNotFound(err) {
		return err
	}
	if t < 0 {
		return d.waitExit(ctx, c, exits, 0)
	}
	if t > 0 {
		if err := d.waitExit(ctx, c, exits, time.Duration(t)*time.Second); err == nil {
			return nil
		}
	}
	d.emit(c, events.ActionKill, map[string]string{"signal": "9"})
	if err := d.keeper.Kill(ctx, c.ID, int(unix.SIGKILL), true); err != nil && !errdefs.IsConflict(err) {
		// The stop signal may have ended it meanwhile (its cgroup is
		// already gone): that is a stop, not an error.
		if d.waitExit(ctx, c, exits, 2*time.Second) == nil {
			return nil
		}
		return err
	}
	return d.waitExit(ctx, c, exits, 0)
}

// waitExit waits until c has exited more than exits times (0 = no limit).
func (d *Daemon) waitExit(ctx context.Context, c *Container, exits int, limit time.Duration) error {
	var timer <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		timer = t.C
	}
	for {
		c.mu.Lock()
		done := c.exits > exits || (!c.State.Running() && c.State.Status != container.StateRestarting)
		ch := c.waitChan()
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-timer:
			return errors.New("timeout")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ContainerRestart stops (if running) and starts the container.
func (d *Daemon) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running()
	c.ManualStop = true
	c.apiRestart = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.apiRestart = false
		c.mu.Unlock()
	}()
	if running {
		if err := d.stop(ctx, c, signal, timeout); err != nil {
			return err
		}
		// let the exit handler finish its cleanup before starting again
		d.waitCleanup(c)
	}
	if err := d.ContainerStart(ctx, name); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	d.emit(c, events.ActionRestart, nil)
	return nil
}

func (d *Daemon) waitCleanup(c *Container) {
	// The exit handler's release of the runtime state and rootfs must be
	// over before the container can start again (restart) or be removed.
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		cleaning := c.cleaning
		ch := c.waitChan()
		c.mu.Unlock()
		if !cleaning {
			break
		}
		select {
		case <-ch:
			continue
		case <-deadline:
		}
		break
	}
	for i := 0; i < 500; i++ {
		if !isMounted(filepath.Join(c.BundleDir, "rootfs")) {
			if _, err := d.rt.State(c.ID); err != nil {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ContainerKill signals the container's main process.
func (d *Daemon) ContainerKill(ctx context.Context, name, signal string) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	sig := unix.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if !c.State.Running() {
		c.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("Cannot kill container: %s: Container %s is not running", name, c.ID))
	}
	// As dockerd: a kill disables the restart policy, unless the container
	// has a stop signal and this is another signal (not SIGKILL).
	disable := true
	if c.Config.StopSignal != "" && sig != unix.SIGKILL {
		stopSig, err := parseSignal(c.Config.StopSignal)
		disable = err == nil && stopSig == sig
	}
	if disable {
		c.ManualStop = true
		d.save(c)
	}
	exits := c.exits
	c.mu.Unlock()
	d.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := d.keeper.Kill(ctx, c.ID, int(sig), false); err != nil || sig != unix.SIGKILL {
		return err
	}
	// As dockerd, a SIGKILL returns once the container has exited, so
	// that what the client does next sees it stopped.
	d.waitExit(ctx, c, exits, 10*time.Second)
	return nil
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameter(fmt.Errorf("Invalid signal: %s", s))
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		base, off := 34, 0
		rest := strings.TrimPrefix(strings.TrimPrefix(name, "SIGRTMIN"), "SIGRTMAX")
		if strings.HasPrefix(name, "SIGRTMAX") {
			base = 64
		}
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil {
				return 0, errdefs.InvalidParameter(fmt.Errorf("Invalid signal: %s", s))
			}
			off = n
		}
		return unix.Signal(base + off), nil
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("Invalid signal: %s", s))
}

// ContainerWait returns a channel that delivers the exit status once the
// condition holds: "not-running" (default), "next-exit" or "removed".
func (d *Daemon) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	c, err := d.Get(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	exits := c.exits
	c.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		for {
			c.mu.Lock()
			var done bool
			switch cond {
			case container.WaitConditionNextExit:
				done = c.exits > exits || c.removed
			case container.WaitConditionRemoved:
				done = c.removed
			default:
				done = !c.State.Running() && !c.starting
			}
			resp := container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
			if c.State.Error != "" && c.exits == exits && !c.State.Running() && cond != container.WaitConditionRemoved {
				resp.Error = &container.WaitExitError{Message: c.State.Error}
			}
			ch := c.waitChan()
			c.mu.Unlock()
			if done {
				if resp.Error != nil && resp.Error.Message == "" {
					resp.Error = nil
				}
				if cond == container.WaitConditionRemoved || cond == container.WaitConditionNextExit {
					resp.Error = nil
				}
				out <- resp
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ContainerRemove deletes a container, its writable layer and its logs.
func (d *Daemon) ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.removing || c.removed {
		c.mu.Unlock()
		return errRemovalInProgress(name)
	}
	running := c.State.Running() || c.starting
	status := c.State.Status
	if running && !force {
		c.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove", name, status))
	}
	// Claim the removal before killing, as dockerd does: a concurrent rm
	// and the auto-remove of an --rm container then yield to this one.
	c.removing = true
	c.mu.Unlock()
	if running {
		// A start in progress is still writing the bundle and creating the
		// process: let it finish (or fail) before killing and tearing down.
		d.waitNotStarting(ctx, c)
		c.mu.Lock()
		c.ManualStop = true
		exits := c.exits
		c.mu.Unlock()
		d.emit(c, events.ActionKill, map[string]string{"signal": "9"}) // as docker: rm -f is kill, die, destroy
		d.keeper.Kill(ctx, c.ID, int(unix.SIGKILL), true)
		d.waitExit(ctx, c, exits, 10*time.Second)
		d.waitCleanup(c)
	}
	if err := d.removeClaimed(c); err != nil {
		return err
	}
	if removeVolumes {
		d.removeAnonymousVolumes(c)
	}
	return nil
}

// waitNotStarting waits (up to a minute) until no start of c is in progress.
func (d *Daemon) waitNotStarting(ctx context.Context, c *Container) {
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		starting := c.starting
		ch := c.waitChan()
		c.mu.Unlock()
		if !starting {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// errRemovalInProgress is docker's answer to a second concurrent removal.
func errRemovalInProgress(name string) error {
	return errdefs.Conflict(fmt.Errorf("removal of container %s is already in progress", name))
}

// remove deletes a stopped container unless another removal has claimed it
// (then it returns errRemovalInProgress).
func (d *Daemon) remove(c *Container, force bool) error {
	c.mu.Lock()
	if c.removing || c.removed {
		c.mu.Unlock()
		return errRemovalInProgress(c.ID[:12])
	}
	c.removing = true
	c.mu.Unlock()
	return d.removeClaimed(c)
}

// removeClaimed deletes c once the caller has set c.removing; on failure
// the claim is dropped so that a later rm can try again.
func (d *Daemon) removeClaimed(c *Container) (retErr error) {
	defer func() {
		if retErr != nil {
			c.mu.Lock()
			c.removing = false
			c.mu.Unlock()
		}
	}()
	c.mu.Lock()
	c.State.Status = container.StateRemoving
	if !c.HostConfig.AutoRemove {
		// For an --rm container the record left by a crash already leads
		// to its removal (see handleExit); skip the transaction.
		d.save(c)
	}
	c.mu.Unlock()
	d.keeper.Delete(context.Background(), c.ID, true)
	d.rt.Delete(c.ID, true)
	rootfs := filepath.Join(c.BundleDir, "rootfs")
	if err := d.images.UnmountRootfs(rootfs); err != nil && isMounted(rootfs) {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	d.releaseShm(c)
	d.unmountVolumes(c)
	os.RemoveAll(c.BundleDir)
	os.RemoveAll(d.containerDir(c.ID)) // logs, etc files, and (as root) the rw layer
	// The records go last, the container's and its rootfs's in one
	// transaction; RemoveRootfsWith first finishes the rw layer's removal.
	if err := d.images.RemoveRootfsWith(c.ID, func(tx *bbolt.Tx) error { return deleteRecordTx(tx, c.ID) }); err != nil {
		return fmt.Errorf("remove container %s layer: %w", c.ID[:12], err)
	}
	os.RemoveAll(d.containerDir(c.ID)) // what remained before the rw layer could go
	d.mu.Lock()
	delete(d.containers, c.ID)
	if d.names[c.Name] == c.ID {
		delete(d.names, c.Name)
	}
	d.mu.Unlock()
	c.mu.Lock()
	c.removed = true
	c.notify()
	c.mu.Unlock()
	d.emit(c, events.ActionDestroy, nil)
	return nil
}
