package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/keeper"
	"berth/internal/specgen"
)

// execConfig is one exec instance (docker keeps them in memory only).
type execConfig struct {
	ID          string
	ContainerID string
	Config      container.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	done     chan struct{}
}

// ExecCreate registers a command to run in a running container.
func (d *Daemon) ExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error) {
	c, err := d.Get(name)
	if err != nil {
		return "", err
	}
	if req == nil || len(req.Cmd) == 0 {
		return "", errdefs.InvalidParameter(errors.New("No exec command specified"))
	}
	c.mu.Lock()
	if !c.State.Running() {
		c.mu.Unlock()
		return "", errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
	}
	if c.State.Status == container.StatePaused {
		c.mu.Unlock()
		return "", errdefs.Conflict(fmt.Errorf("Container %s is paused, unpause the container before exec", c.ID))
	}
	rootfs := filepath.Join(c.BundleDir, "rootfs")
	c.mu.Unlock()
	if req.User != "" {
		// As dockerd: an unknown user or group fails the create (400), not
		// the start, whose error would only reach an attached client as
		// output after the upgrade.
		if _, err := specgen.ResolveUser(rootfs, req.User, nil); err != nil {
			return "", errdefs.InvalidParameter(err)
		}
	}
	c.mu.Lock()
	var b [32]byte
	rand.Read(b[:])
	e := &execConfig{ID: hex.EncodeToString(b[:]), ContainerID: c.ID, Config: *req, done: make(chan struct{})}
	c.execs[e.ID] = e
	d.execs.Store(e.ID, e)
	c.mu.Unlock()
	d.emit(c, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), nil)
	return e.ID, nil
}

func (d *Daemon) getExec(id string) (*execConfig, error) {
	v, ok := d.execs.Load(id)
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("No such exec instance: %s", id))
	}
	return v.(*execConfig), nil
}

// ExecStart runs the exec's process; attached, it streams until the process
// ends and its exit code is known, so an inspect right after sees it.
func (d *Daemon) ExecStart(ctx context.Context, execID string, opts api.ExecStartOptions) error {
	e, err := d.getExec(execID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("Error: Exec command %s has already run", execID))
	}
	e.started = true
	e.mu.Unlock()
	c, err := d.Get(e.ContainerID)
	if err != nil {
		return err
	}
	proc, err := d.execProcess(c, &e.Config)
	if err != nil {
		return err
	}
	var h, w uint
	if opts.ConsoleSize != nil {
		h, w = opts.ConsoleSize[0], opts.ConsoleSize[1]
	} else if e.Config.ConsoleSize != nil {
		h, w = e.Config.ConsoleSize[0], e.Config.ConsoleSize[1]
	}
	req := keeper.ExecRequest{ID: c.ID, ExecID: e.ID, Process: proc, Stdin: e.Config.AttachStdin, Detach: opts.Detach, Height: h, Width: w}
	d.emit(c, events.Action("exec_start: "+strings.Join(e.Config.Cmd, " ")), nil)
	if opts.Detach {
		if _, err := d.keeper.Exec(ctx, req); err != nil {
			return d.execFailed(e, err)
		}
		e.mu.Lock()
		e.running = true
		e.mu.Unlock()
		return nil
	}
	streams, err := opts.GetStreams(proc.Terminal)
	if err != nil {
		return err
	}
	ks, err := d.keeper.Exec(ctx, req)
	if err != nil {
		msg := fmt.Sprintf("OCI runtime exec failed: %v: unknown\r\n", err)
		if streams.Stdout != nil {
			io.WriteString(streams.Stdout, msg)
		}
		d.execFailed(e, err)
		return nil
	}
	e.mu.Lock()
	e.running, e.pid = true, ks.Pid
	e.mu.Unlock()
	if e.Config.AttachStdin && streams.Stdin != nil {
		go func() {
			io.Copy(ks, streams.Stdin)
			ks.CloseWrite()
		}()
	}
	copyStream(streams, ks, proc.Terminal)
	ks.Close()
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// execFailed records a process that could not be started: docker reports
// 126 (cannot invoke) or 127 (not found) as the exec's exit code.
func (d *Daemon) execFailed(e *execConfig, err error) error {
	code := 126
	if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such file") {
		code = 127
	}
	e.finish(code)
	return nil
}

// finish records e's exit code and wakes its waiters, once.
func (e *execConfig) finish(code int) {
	e.mu.Lock()
	e.exitCode = &code
	e.running = false
	select {
	case <-e.done:
	default:
		close(e.done)
	}
	e.mu.Unlock()
}

func (d *Daemon) handleExecExit(ev keeper.Event) {
	e, err := d.getExec(ev.ExecID)
	if err != nil {
		return
	}
	code := ev.ExitCode
	e.finish(code)
	if c, err := d.Get(ev.ID); err == nil {
		d.emit(c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": fmt.Sprint(code)})
	}
}

// execProcess derives the exec's OCI process from the container's: same
// capabilities, seccomp, rlimits; the exec's args, env, cwd, user and tty.
func (d *Daemon) execProcess(c *Container, cfg *container.ExecCreateRequest) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(c.BundleDir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, err
	}
	p := spec.Process
	if p == nil {
		return nil, errors.New("container spec has no process")
	}
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	p.Env = mergeEnv(p.Env, cfg.Env)
	if cfg.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if cfg.User != "" {
		u, err := specgen.ResolveUser(filepath.Join(c.BundleDir, "rootfs"), cfg.User, nil)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		p.User = u
	}
	if cfg.Privileged {
		all := specgen.AllCapabilities()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return p, nil
}

func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// ExecInspect reports an exec's state and exit code.
func (d *Daemon) ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error) {
	e, err := d.getExec(execID)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	entry, args := "", []string{}
	if len(e.Config.Cmd) > 0 {
		entry, args = e.Config.Cmd[0], e.Config.Cmd[1:]
	}
	return &container.ExecInspectResponse{
		ID: e.ID, ContainerID: e.ContainerID, Running: e.running, ExitCode: e.exitCode, Pid: e.pid,
		OpenStdin: e.Config.AttachStdin, OpenStdout: e.Config.AttachStdout, OpenStderr: e.Config.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.Config.Tty, Entrypoint: entry, Arguments: args, Privileged: &e.Config.Privileged, User: e.Config.User},
	}, nil
}

// ExecResize sets an exec's terminal size.
func (d *Daemon) ExecResize(ctx context.Context, execID string, height, width uint) error {
	e, err := d.getExec(execID)
	if err != nil {
		return err
	}
	if c, err := d.Get(e.ContainerID); err == nil {
		c.mu.Lock()
		running := c.State.Running()
		c.mu.Unlock()
		if !running {
			return errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
		}
	}
	return d.keeper.Resize(ctx, e.ContainerID, e.ID, height, width)
}
