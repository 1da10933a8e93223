package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.etcd.io/bbolt"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/jsonlog"
	"berth/internal/keeper"
	"berth/internal/specgen"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ContainerCreate records a new container on an image; nothing runs yet.
func (d *Daemon) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	if req == nil || req.Config == nil {
		return container.CreateResponse{}, errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	if req.Config.Image == "" {
		return container.CreateResponse{}, errdefs.InvalidParameter(errors.New("no image specified"))
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := validateHostConfig(hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateHealth(req.Config.Healthcheck); err != nil {
		return container.CreateResponse{}, errdefs.InvalidParameter(err)
	}
	if name != "" && !validName.MatchString(name) {
		return container.CreateResponse{}, errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	if name == "" {
		d.mu.Lock()
		name = d.generateName()
		d.mu.Unlock()
	}
	if err := d.checkCreate("/"+strings.TrimPrefix(name, "/"), req.Config, hc); err != nil {
		return container.CreateResponse{}, err
	}
	img, err := d.images.Resolve(req.Config.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	cfg := *req.Config
	cfg.Image = req.Config.Image

	d.mu.Lock()
	id := d.newID()
	if name == "" {
		name = d.generateName()
	}
	name = "/" + strings.TrimPrefix(name, "/")
	if other, ok := d.names[name]; ok {
		d.mu.Unlock()
		return container.CreateResponse{}, errdefs.Conflict(fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other))
	}
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Config: &cfg, HostConfig: hc,
		Image: req.Config.Image, ImageID: img.ID,
		State:     State{Status: container.StateCreated},
		LogPath:   filepath.Join(d.containerDir(id), id+"-json.log"),
		BundleDir: d.bundleDir(id),
		execs:     map[string]*execConfig{},
	}
	c.Path, c.Args = processArgs(&cfg, img.Config.Config.Entrypoint, img.Config.Config.Cmd)
	c.NetworkAliases = networkAliases(req.NetworkingConfig, hc.NetworkMode)
	c.ReadOnlyNonRecursive = api.VersionBefore(ctx, "1.44")
	// Reserve the name now; the container becomes visible (to rm, start,
	// inspect) only once its layer and record exist.
	d.names[name] = id
	d.mu.Unlock()

	fail := func(err error) (container.CreateResponse, error) {
		d.mu.Lock()
		delete(d.names, name)
		d.mu.Unlock()
		d.images.RemoveRootfs(id)
		os.RemoveAll(d.containerDir(id))
		return container.CreateResponse{}, err
	}
	if c.NetworkIP, c.NetworkIP6, err = networkIP(req.NetworkingConfig, hc.NetworkMode); err != nil {
		return fail(err)
	}
	c.NetworkMAC = networkMAC(req.NetworkingConfig, hc.NetworkMode)
	if c.Networks, err = d.createNetworks(req.NetworkingConfig, hc.NetworkMode); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(d.containerDir(id), 0o710); err != nil {
		return fail(err)
	}
	if err := d.resolveVolumes(c, img.Config.Config.Volumes); err != nil {
		return fail(err)
	}
	c.mu.Lock()
	rec, err := json.Marshal(c)
	c.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	// the container's record and its rootfs record: one transaction
	if err := d.images.PrepareRootfsWith(id, img, func(tx *bbolt.Tx) error { return putRecord(tx, id, rec) }); err != nil {
		return fail(err)
	}
	if err := d.populateVolumes(c, img); err != nil {
		d.images.RemoveRootfsWith(id, func(tx *bbolt.Tx) error { return deleteRecordTx(tx, id) })
		d.removeAnonymousVolumes(c)
		return fail(err)
	}
	d.mu.Lock()
	d.containers[id] = c
	d.mu.Unlock()
	d.emit(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: id, Warnings: []string{}}, nil
}

// processArgs merges entrypoint and cmd the way docker does.
func processArgs(cfg *container.Config, imgEntrypoint, imgCmd []string) (string, []string) {
	entry, cmd := []string(cfg.Entrypoint), []string(cfg.Cmd)
	if entry == nil {
		entry = imgEntrypoint
		if len(cmd) == 0 {
			cmd = imgCmd
		}
	}
	all := append(append([]string{}, entry...), cmd...)
	if len(all) == 0 {
		return "", []string{}
	}
	return all[0], all[1:]
}

func validateHostConfig(hc *container.HostConfig) error {
	switch hc.RestartPolicy.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hc.RestartPolicy.MaximumRetryCount != 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure'"))
		}
	case container.RestartPolicyOnFailure:
		if hc.RestartPolicy.MaximumRetryCount < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy: maximum retry count cannot be negative"))
		}
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name))
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return errdefs.InvalidParameter(errors.New("can't create 'AutoRemove' container with restart policy"))
	}
	if hc.Memory > 0 && hc.Memory < 6<<20 {
		return errdefs.InvalidParameter(errors.New("Minimum memory limit allowed is 6MB"))
	}
	if hc.MemorySwap > 0 && hc.Memory > 0 && hc.MemorySwap < hc.Memory {
		return errdefs.InvalidParameter(errors.New("Minimum memoryswap limit should be larger than memory limit, see usage"))
	}
	// The resource checks start would make (negative CPUs, bad weights,
	// more CPUs than the host has): dockerd refuses these at create, so
	// no container is left behind.
	if _, err := specgen.Resources(hc); err != nil {
		return err
	}
	switch hc.NetworkMode {
	case "", "default", "bridge", "none", "host":
	default:
		if !strings.HasPrefix(string(hc.NetworkMode), "container:") {
			// user-defined networks: start answers "not found" (as
			// dockerd: a 404 at create would make the CLI pull the image)
		}
	}
	return nil
}

// ContainerStart starts a created or exited container.
func (d *Daemon) ContainerStart(ctx context.Context, name string) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.State.Running() || c.starting {
		c.mu.Unlock()
		return errdefs.NotModified(fmt.Errorf("container %s is already running", name))
	}
	if c.removed || c.removing || c.State.Status == container.StateRemoving {
		c.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be started", name))
	}
	c.starting = true
	c.ManualStop = false
	c.mu.Unlock()
	err = d.start(c)
	c.mu.Lock()
	c.starting = false
	auto := c.HostConfig.AutoRemove
	if err != nil {
		c.exits++ // a failed start counts as an exit for `wait next-exit`
	}
	c.notify() // a remove may be waiting for the start to finish
	c.mu.Unlock()
	if err != nil && auto {
		// docker removes an --rm container whose start failed; the CLI's
		// wait?condition=removed then reports the exit code (127, 126).
		d.remove(c, true)
	}
	return err
}

// start mounts the root filesystem, writes the OCI bundle and has the keeper
// run it. Pending attachers get their streams before the process execs.
func (d *Daemon) start(c *Container) (retErr error) {
	img, err := d.images.Resolve(c.ImageID.String())
	if err != nil {
		return fmt.Errorf("image of container %s: %w", c.ID[:12], err)
	}
	bundle := c.BundleDir
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	mount := d.images.MountRootfs
	if c.HostConfig.AutoRemove {
		// thrown away at exit: skip the syncfs of the host's file system
		// that unmounting a plain overlay costs
		mount = d.images.MountRootfsVolatile
	}
	if err := mount(c.ID, img, rootfs); err != nil {
		return fmt.Errorf("mount root filesystem: %w", err)
	}
	defer func() {
		if retErr != nil {
			d.unmountVolumes(c)
			d.images.UnmountRootfs(rootfs)
			d.releaseShm(c)
			c.mu.Lock()
			c.State.Error = retErr.Error()
			if c.State.Status == container.StateCreated || c.State.Status == container.StateExited {
				c.State.ExitCode = exitCodeForStartError(retErr)
				if c.State.Status == container.StateExited {
					c.State.FinishedAt = time.Now().UTC()
				}
			}
			d.save(c)
			pending := c.pending
			c.pending = nil
			c.mu.Unlock()
			for _, p := range pending {
				p.ready <- nil // the attach ends: there is no process
			}
		}
	}()
	files, err := d.writeEtcFiles(c)
	if err != nil {
		return err
	}
	nsPaths, err := d.namespacePaths(c.HostConfig)
	if err != nil {
		return err
	}
	if err := d.checkNetworkMode(c.HostConfig.NetworkMode); err != nil {
		return err
	}
	netnsPath, err := d.attachNetwork(c, &img.Config.Config)
	if err != nil {
		return err
	}
	if netnsPath != "" {
		defer func() {
			if retErr != nil {
				d.detachNetwork(c)
			}
		}()
		nsPaths[specs.NetworkNamespace] = netnsPath
	}
	volPaths, err := d.mountVolumes(c, rootfs)
	if err != nil {
		return err
	}
	spec, err := specgen.Build(specgen.Input{
		ID: c.ID, Config: c.Config, HostConfig: specHostConfig(c.HostConfig, volPaths, c.Volumes), Image: &img.Config.Config, NamespacePaths: nsPaths,
		Rootfs: rootfs, HostnamePath: files.hostname, HostsPath: files.hosts, ResolvConfPath: files.resolv,
		InitPath: d.cfg.Exe, ReadOnlyNonRecursive: c.ReadOnlyNonRecursive,
	})
	if err != nil {
		return err
	}
	spec.Root.Path = rootfs
	if err := d.setupShm(c, spec); err != nil {
		return err
	}
	if err := makeWorkdir(rootfs, spec.Process.Cwd, spec.Process.User.UID, spec.Process.User.GID); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return err
	}
	logSize, logFiles := logLimits(c.HostConfig.LogConfig.Config)
	pid, err := d.keeper.Create(d.ctx, keeper.CreateRequest{
		ID: c.ID, Bundle: bundle, Tty: c.Config.Tty, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
		LogPath: c.LogPath, LogMaxSize: logSize, LogMaxFiles: logFiles,
	})
	if err != nil {
		return startError(err)
	}
	// Hand the attachers that were waiting for this start their streams.
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	exits := c.exits
	c.mu.Unlock()
	for _, p := range pending {
		s, err := d.keeper.Attach(d.ctx, c.ID, p.stdin, p.stdout, p.stderr)
		if err != nil {
			d.log.Warn("attach at start", "id", c.ID, "err", err)
		}
		p.ready <- s
	}
	startedAt := time.Now().UTC()
	if err := d.keeper.Start(d.ctx, c.ID); err != nil {
		d.keeper.Delete(context.Background(), c.ID, true)
		return startError(err)
	}
	c.mu.Lock()
	if c.exits != exits {
		// A fast process's exit event overtook the keeper's reply and
		// handleExit has recorded the exit (and maybe scheduled a
		// restart): marking it running now would leave it running forever.
		c.State.StartedAt = startedAt
	} else {
		c.State = State{Status: container.StateRunning, Pid: pid, StartedAt: startedAt, Health: c.State.Health}
	}
	exited := c.exits != exits
	if !c.removed {
		// an --rm container whose exit overtook us is already gone:
		// saving would bring its record back
		d.save(c)
	}
	c.notify()
	c.mu.Unlock()
	d.emit(c, events.ActionStart, nil)
	if !exited {
		d.startHealth(c, true)
	}
	return nil
}

// startError classifies a runtime failure to start: docker answers 400 and
// the CLI maps "not found" / "permission denied" messages to 127 / 126.
func startError(err error) error {
	if errdefs.ClassOf(err) != errdefs.Unknown {
		return err
	}
	return errdefs.InvalidParameter(fmt.Errorf("failed to create task for container: %w", err))
}

func exitCodeForStartError(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

func logLimits(opts map[string]string) (int64, int) {
	size, files := int64(jsonlog.DefaultMaxSize), jsonlog.DefaultMaxFiles
	if v, ok := opts["max-size"]; ok {
		if n, err := parseSize(v); err == nil {
			size = n
		}
	}
	if v, ok := opts["max-file"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			files = n
		}
	}
	return size, files
}

// handleExit records an exit reported by the keeper, cleans up, and applies
// the restart policy or auto-removal.
func (d *Daemon) handleExit(e keeper.Event) {
	c, err := d.Get(e.ID)
	if err != nil {
		d.keeper.Delete(context.Background(), e.ID, true)
		return
	}
	c.mu.Lock()
	c.stopHealth()
	c.State.Status = container.StateExited
	if !c.HostConfig.AutoRemove && shouldRestart(c.HostConfig.RestartPolicy, c.ManualStop, e.ExitCode, c.RestartCount) {
		// never "exited" between two runs of a restarting container:
		// a poll for exited must see only the final exit
		c.State.Status = container.StateRestarting
	}
	c.State.ExitCode = e.ExitCode
	c.State.Pid = 0
	c.State.FinishedAt = e.ExitedAt.UTC()
	c.State.OOMKilled = e.OOMKilled
	c.exits++
	c.cleaning = true
	if !c.HostConfig.AutoRemove {
		// An --rm container is removed next; should the daemon die first,
		// its record still says running and reconcile finds it lost and
		// removes it then: the exit needs no transaction (and fsync) of its
		// own on the path that `run --rm` waits on.
		d.save(c)
	}
	c.mu.Unlock()
	d.emit(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(e.ExitCode)})
	d.cleanupAfterExit(c, true)
}

// cleanupAfterExit releases the runtime state and the rootfs mount, wakes
// waiters, then restarts or removes the container as configured.
func (d *Daemon) cleanupAfterExit(c *Container, keeperHeld bool) {
	if keeperHeld {
		if err := d.keeper.Delete(context.Background(), c.ID, true); err != nil && !errdefs.IsNotFound(err) {
			d.log.Warn("keeper delete", "id", c.ID, "err", err)
		}
	}
	d.rt.Delete(c.ID, true)
	d.detachNetwork(c)
	if err := d.images.UnmountRootfs(filepath.Join(c.BundleDir, "rootfs")); err != nil {
		d.log.Warn("unmount rootfs", "id", c.ID, "err", err)
	}
	d.unmountVolumes(c)
	d.releaseShm(c)
	c.mu.Lock()
	c.cleaning = false
	c.notify()
	manual, policy, code, restarts := c.ManualStop, c.HostConfig.RestartPolicy, c.State.ExitCode, c.RestartCount
	auto := c.HostConfig.AutoRemove && !c.apiRestart
	c.mu.Unlock()
	if auto {
		if err := d.remove(c, false); err != nil && !errdefs.IsConflict(err) {
			d.log.Warn("auto-remove", "id", c.ID, "err", err) // a conflict: an rm got there first
		} else if err == nil {
			d.removeAnonymousVolumes(c) // as docker run --rm
		}
		return
	}
	if shouldRestart(policy, manual, code, restarts) {
		d.scheduleRestart(c, restarts)
		return
	}
	c.mu.Lock()
	if c.State.Status == container.StateRestarting && !c.starting {
		c.State.Status = container.StateExited // stopped meanwhile
		d.save(c)
		c.notify()
	}
	c.mu.Unlock()
}

func shouldRestart(p container.RestartPolicy, manual bool, code, restarts int) bool {
	if manual {
		return false
	}
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

func (d *Daemon) scheduleRestart(c *Container, restarts int) {
	delay := 100 * time.Millisecond << min(restarts, 10)
	if delay > time.Minute {
		delay = time.Minute
	}
	c.mu.Lock()
	c.State.Status = container.StateRestarting
	c.notify()
	c.mu.Unlock()
	time.AfterFunc(delay, func() {
		c.mu.Lock()
		if c.removed || c.ManualStop || c.State.Status != container.StateRestarting {
			c.mu.Unlock()
			return
		}
		c.RestartCount++
		c.starting = true
		c.mu.Unlock()
		err := d.start(c)
		c.mu.Lock()
		c.starting = false
		if err != nil {
			c.State.Status = container.StateExited
		}
		c.notify()
		c.mu.Unlock()
		if err != nil {
			d.log.Warn("restart failed", "id", c.ID, "err", err)
		} else {
			d.emit(c, events.ActionRestart, nil)
		}
	})
}

// applyRestartPolicies starts, at daemon start-up, the stopped containers
// whose policy asks for it (docker's "always" and "unless-stopped").
func (d *Daemon) applyRestartPolicies() {
	d.mu.Lock()
	var todo []*Container
	for _, c := range d.containers {
		c.mu.Lock()
		p := c.HostConfig.RestartPolicy.Name
		if !c.State.Running() && !c.ManualStop && c.State.Status == container.StateExited &&
			(p == container.RestartPolicyAlways || p == container.RestartPolicyUnlessStopped) {
			todo = append(todo, c)
		}
		c.mu.Unlock()
	}
	d.mu.Unlock()
	for _, c := range todo {
		go func() {
			if err := d.ContainerStart(d.ctx, c.ID); err != nil && !errdefs.IsNotModified(err) {
				d.log.Warn("restart policy at start-up", "id", c.ID, "err", err)
			}
		}()
	}
}
