package daemon

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/specgen"
)

// ContainerInspect returns docker's inspect document; sub-objects are never
// null (the docker CLI dereferences them).
func (d *Daemon) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	c, err := d.Get(name)
	if err != nil {
		return nil, err
	}
	var sizeRw int64
	if size {
		sizeRw, _ = d.images.RootfsSize(c.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.State
	execIDs := make([]string, 0, len(c.execs))
	for id := range c.execs {
		execIDs = append(execIDs, id)
	}
	dir := d.containerDir(c.ID)
	cfg := *c.Config
	if cfg.Hostname == "" {
		cfg.Hostname = c.ID[:12]
	}
	r := &container.InspectResponse{
		ID: c.ID, Created: c.Created.Format(time.RFC3339Nano), Path: c.Path, Args: nonNil(c.Args),
		State: &container.State{
			Status: st.Status, Running: st.Running(), Paused: st.Status == container.StatePaused,
			Restarting: st.Status == container.StateRestarting, OOMKilled: st.OOMKilled, Dead: st.Status == container.StateDead,
			Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: apiTime(st.StartedAt), FinishedAt: apiTime(st.FinishedAt), Health: st.Health,
		},
		Image:          c.ImageID.String(),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"), HostnamePath: filepath.Join(dir, "hostname"), HostsPath: filepath.Join(dir, "hosts"),
		LogPath: c.LogPath, Name: c.Name, RestartCount: c.RestartCount, Driver: "overlay2", Platform: "linux",
		ExecIDs: execIDs, HostConfig: c.HostConfig,
		GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{
			"MergedDir": filepath.Join(c.BundleDir, "rootfs"),
			"UpperDir":  filepath.Join(dir, "rw", "upper"),
			"WorkDir":   filepath.Join(dir, "rw", "work"),
		}},
		Mounts:          append(mountPoints(c.HostConfig), c.volumeMountPoints()...),
		Config:          &cfg,
		NetworkSettings: d.networkSettings(c),
	}
	if len(execIDs) == 0 {
		r.ExecIDs = nil
	}
	if size {
		rootfs := sizeRw + d.imageSize(c)
		r.SizeRw, r.SizeRootFs = &sizeRw, &rootfs
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func apiTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (d *Daemon) imageSize(c *Container) int64 {
	img, err := d.images.Resolve(c.ImageID.String())
	if err != nil {
		return 0
	}
	return img.Size
}

func networksOf(c *Container) map[string]*network.EndpointSettings {
	mode := string(c.HostConfig.NetworkMode)
	if mode == "" {
		mode = "bridge"
	}
	out := map[string]*network.EndpointSettings{mode: {}}
	if c.HostConfig.NetworkMode.IsContainer() {
		// on no network of its own: dockerd lists none
		delete(out, mode)
	}
	for _, a := range c.Networks { // joined with `network connect`
		out[a.Name] = &network.EndpointSettings{NetworkID: a.NetworkID}
	}
	return out
}

func mountPoints(hc *container.HostConfig) []container.MountPoint {
	out := []container.MountPoint{}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || isVolumeBind(b) {
			continue // volumes: see volumeMountPoints
		}
		mp := container.MountPoint{Type: "bind", Source: parts[0], Destination: parts[1], RW: true, Propagation: "rprivate"}
		if len(parts) > 2 {
			mp.Mode = parts[2]
			for _, o := range strings.Split(parts[2], ",") {
				if o == "ro" {
					mp.RW = false
				}
				if bindPropagations[o] {
					mp.Propagation = mount.Propagation(o)
				}
			}
		}
		out = append(out, mp)
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume {
			continue
		}
		mp := container.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if m.Type == mount.TypeBind {
			mp.Propagation = mount.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
		}
		out = append(out, mp)
	}
	return out
}

// statusText is the human string of `docker ps`'s STATUS column.
func statusText(st State, now time.Time) string {
	switch st.Status {
	case container.StateRunning, container.StatePaused:
		s := "Up " + units.HumanDuration(now.Sub(st.StartedAt))
		if st.Health != nil && st.Health.Status != "" && st.Health.Status != container.NoHealthcheck {
			s += " (" + string(st.Health.Status) + ")"
		}
		if st.Status == container.StatePaused {
			s += " (Paused)"
		}
		return s
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

// ContainerList serves `ps`: newest first, filtered as docker filters.
func (d *Daemon) ContainerList(ctx context.Context, all bool, limit int, size bool, f api.Filters) ([]container.Summary, error) {
	for k := range f {
		switch k {
		case "id", "name", "label", "annotation", "status", "exited", "ancestor", "before", "since", "health", "network", "volume", "is-task", "publish", "expose", "isolation":
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s'", k))
		}
	}
	d.mu.Lock()
	list := make([]*Container, 0, len(d.containers))
	for _, c := range d.containers {
		list = append(list, c)
	}
	d.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	var before, since time.Time
	if v := first(f["before"]); v != "" {
		if c, err := d.Get(v); err == nil {
			before = c.Created
		}
	}
	if v := first(f["since"]); v != "" {
		if c, err := d.Get(v); err == nil {
			since = c.Created
		}
	}
	if limit > 0 || !before.IsZero() || !since.IsZero() {
		all = true
	}
	if _, ok := f["status"]; ok {
		all = true
	}
	if _, ok := f["exited"]; ok {
		all = true
	}
	now := time.Now()
	out := []container.Summary{}
	for _, c := range list {
		c.mu.Lock()
		s := c.summary(now)
		running := c.State.Running()
		created := c.Created
		c.mu.Unlock()
		d.mu.Lock()
		s.Names = append(s.Names, d.linkNames(s.Names[0])...)
		d.mu.Unlock()
		if !all && !running {
			continue
		}
		if (!before.IsZero() && !created.Before(before)) || (!since.IsZero() && !created.After(since)) {
			continue
		}
		if !d.matchContainer(c, s, f) {
			continue
		}
		if size {
			rw, _ := d.images.RootfsSize(c.ID)
			s.SizeRw, s.SizeRootFs = rw, rw+d.imageSize(c)
		}
		out = append(out, s)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func first(set map[string]bool) string {
	for k := range set {
		return k
	}
	return ""
}

// summary builds the /containers/json element; c.mu held.
func (c *Container) summary(now time.Time) container.Summary {
	cmd := strings.TrimSpace(c.Path + " " + strings.Join(c.Args, " "))
	s := container.Summary{
		ID: c.ID, Names: []string{c.Name}, Image: c.Image, ImageID: c.ImageID.String(), Command: cmd,
		Created: c.Created.Unix(), Ports: portSummaries(c), Labels: c.Config.Labels,
		State: c.State.Status, Status: statusText(c.State, now),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: networksOf(c)},
		Mounts:          append(mountPoints(c.HostConfig), c.volumeMountPoints()...),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	s.HostConfig.Annotations = c.HostConfig.Annotations
	if c.State.Health != nil {
		s.Health = &container.HealthSummary{Status: c.State.Health.Status, FailingStreak: c.State.Health.FailingStreak}
	}
	return s
}

func (d *Daemon) matchContainer(c *Container, s container.Summary, f api.Filters) bool {
	match := func(key string, ok func(v string) bool) bool {
		set, present := f[key]
		if !present || len(set) == 0 {
			return true
		}
		for v := range set {
			if ok(v) {
				return true
			}
		}
		return false
	}
	if !match("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) {
		return false
	}
	if !match("name", func(v string) bool {
		return strings.Contains(strings.TrimPrefix(c.Name, "/"), strings.TrimPrefix(v, "/"))
	}) {
		return false
	}
	if !match("status", func(v string) bool { return string(s.State) == v }) {
		return false
	}
	if !match("exited", func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && s.State == container.StateExited && c.State.ExitCode == n
	}) {
		return false
	}
	if !match("ancestor", func(v string) bool {
		if v == c.Image || strings.HasPrefix(c.ImageID.Encoded(), strings.TrimPrefix(v, "sha256:")) {
			return true
		}
		img, err := d.images.Resolve(v)
		return err == nil && img.ID == c.ImageID
	}) {
		return false
	}
	if !match("health", func(v string) bool {
		if s.Health == nil {
			return v == string(container.NoHealthcheck)
		}
		return string(s.Health.Status) == v
	}) {
		return false
	}
	if !match("network", func(v string) bool { _, ok := s.NetworkSettings.Networks[v]; return ok }) {
		return false
	}
	for l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := s.Labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	for a := range f["annotation"] {
		k, v, hasV := strings.Cut(a, "=")
		got, ok := s.HostConfig.Annotations[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// ContainerRename changes a container's name.
func (d *Daemon) ContainerRename(ctx context.Context, name, newName string) error {
	if newName == "" || !validName.MatchString(newName) {
		return errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName))
	}
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	d.mu.Lock()
	if other, ok := d.names[newName]; ok {
		d.mu.Unlock()
		if other == c.ID {
			return errdefs.InvalidParameter(errors.New("Renaming a container with the same name as its current name"))
		}
		return errdefs.Conflict(fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", newName, other))
	}
	c.mu.Lock()
	old := c.Name
	delete(d.names, old)
	d.names[newName] = c.ID
	c.Name = newName
	err = d.save(c)
	c.mu.Unlock()
	d.mu.Unlock()
	d.emit(c, events.ActionRename, map[string]string{"oldName": old})
	return err
}

// ContainerPause freezes the container's processes.
func (d *Daemon) ContainerPause(ctx context.Context, name string) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	if err := d.pause(c); err != nil {
		return err
	}
	// published before the reply, as dockerd does: a client that asks for
	// the events up to "now" right after must see it
	d.emit(c, events.ActionPause, nil)
	return nil
}

func (d *Daemon) pause(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StateRunning {
		if c.State.Status == container.StatePaused {
			return errdefs.Conflict(fmt.Errorf("Container %s is already paused", c.ID))
		}
		return errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
	}
	if err := d.rt.Pause(c.ID); err != nil {
		return err
	}
	c.State.Status = container.StatePaused
	d.save(c)
	c.notify()
	return nil
}

// ContainerUnpause thaws a paused container.
func (d *Daemon) ContainerUnpause(ctx context.Context, name string) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	if err := d.unpause(c); err != nil {
		return err
	}
	d.emit(c, events.ActionUnPause, nil) // before the reply, as for pause
	return nil
}

func (d *Daemon) unpause(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StatePaused {
		return errdefs.Conflict(fmt.Errorf("Container %s is not paused", c.ID))
	}
	if err := d.rt.Resume(c.ID); err != nil {
		return err
	}
	c.State.Status = container.StateRunning
	d.save(c)
	c.notify()
	return nil
}

// ContainerResize sets the container's terminal size.
func (d *Daemon) ContainerResize(ctx context.Context, name string, height, width uint) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running()
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
	}
	return d.keeper.Resize(ctx, c.ID, "", height, width)
}

// ContainerTop runs ps on the host and keeps the container's processes.
func (d *Daemon) ContainerTop(ctx context.Context, name, psArgs string) (container.TopResponse, error) {
	c, err := d.Get(name)
	if err != nil {
		return container.TopResponse{}, err
	}
	c.mu.Lock()
	running := c.State.Running()
	c.mu.Unlock()
	if !running {
		return container.TopResponse{}, errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
	}
	pids, err := d.rt.Processes(c.ID)
	if err != nil {
		return container.TopResponse{}, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return container.TopResponse{}, fmt.Errorf("ps %s: %w", psArgs, err)
	}
	return parsePS(string(out), pids)
}

func parsePS(out string, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return container.TopResponse{}, errors.New("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return container.TopResponse{}, errdefs.InvalidParameter(errors.New("Couldn't find PID field in ps output"))
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !want[pid] {
			continue
		}
		row := f[:len(titles)-1]
		row = append(append([]string{}, row...), strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}

// ContainerPrune removes stopped containers.
func (d *Daemon) ContainerPrune(ctx context.Context, f api.Filters) (*container.PruneReport, error) {
	d.mu.Lock()
	list := make([]*Container, 0, len(d.containers))
	for _, c := range d.containers {
		list = append(list, c)
	}
	d.mu.Unlock()
	rep := &container.PruneReport{ContainersDeleted: []string{}}
	until := time.Time{}
	if v := first(f["until"]); v != "" {
		if t, err := parseTimeArg(v); err == nil {
			until = t
		}
	}
	for _, c := range list {
		c.mu.Lock()
		stopped := !c.State.Running() && !c.starting
		s := c.summary(time.Now())
		created := c.Created
		c.mu.Unlock()
		if !stopped || (!until.IsZero() && created.After(until)) {
			continue
		}
		if !d.matchContainer(c, s, api.Filters{"label": f["label"]}) {
			continue
		}
		size, _ := d.images.RootfsSize(c.ID)
		if err := d.remove(c, false); err != nil {
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

func parseTimeArg(v string) (time.Time, error) {
	if dur, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-dur), nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(int64(n), 0), nil
	}
	return time.Parse(time.RFC3339, v)
}

// ContainerChanges lists what the container changed in its root.
func (d *Daemon) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	c, err := d.Get(name)
	if err != nil {
		return nil, err
	}
	changes, err := d.images.Changes(c.ID)
	if err != nil {
		return nil, err
	}
	out := make([]container.FilesystemChange, 0, len(changes))
	for _, ch := range changes {
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)})
	}
	return hideMountpoints(out), nil
}

// ContainerUpdate changes resource limits (and the restart policy).
func (d *Daemon) ContainerUpdate(ctx context.Context, name string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := d.Get(name)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	resp, err := d.update(c, u)
	if err == nil {
		d.emit(c, events.ActionUpdate, nil) // before the reply, as for pause
	}
	return resp, err
}

func (d *Daemon) update(c *Container, u *container.UpdateConfig) (container.UpdateResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := c.HostConfig
	r := u.Resources
	if r.Memory != 0 {
		hc.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		hc.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		hc.MemoryReservation = r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		hc.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		hc.CPUShares = r.CPUShares
	}
	if r.CPUQuota != 0 {
		hc.CPUQuota = r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		hc.CPUPeriod = r.CPUPeriod
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		hc.PidsLimit = r.PidsLimit
	}
	if r.BlkioWeight != 0 {
		hc.BlkioWeight = r.BlkioWeight
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return container.UpdateResponse{}, errdefs.Conflict(errors.New("Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	if err := validateHostConfig(hc); err != nil {
		return container.UpdateResponse{}, err
	}
	res, err := specgen.Resources(hc)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if c.State.Running() {
		if err := d.rt.Update(c.ID, res); err != nil {
			return container.UpdateResponse{}, errdefs.InvalidParameter(fmt.Errorf("Cannot update container %s: %w", c.ID, err))
		}
	}
	if err := d.save(c); err != nil {
		return container.UpdateResponse{}, err
	}
	return container.UpdateResponse{Warnings: []string{}}, nil
}
