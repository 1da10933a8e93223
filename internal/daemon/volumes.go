package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/image"
	"berth/internal/volume"
)

// VolumeMount is one volume a container uses, resolved at create: named
// ones from -v/--mount, anonymous ones from -v /path, the image's VOLUME
// and --volumes-from. A host bind inherited through --volumes-from has no
// Name.
type VolumeMount struct {
	Name        string
	Destination string
	// Source is the volume's content on the host.
	Source string
	RW     bool
	// NoCopy skips populating an empty volume from the image.
	NoCopy bool
	// Mode is the -v mode string, shown by inspect.
	Mode string `json:",omitempty"`
}

// isVolumeBind reports whether a -v value names a volume rather than a
// host path ("/data" alone is anonymous).
func isVolumeBind(b string) bool {
	parts := strings.Split(b, ":")
	return len(parts) == 1 || (len(parts) <= 3 && !path.IsAbs(parts[0]))
}

// resolveVolumes fills c.Volumes and creates the volumes missing, the way
// docker create does. imgVolumes is the image's VOLUME set.
func (d *Daemon) resolveVolumes(c *Container, imgVolumes map[string]struct{}) (retErr error) {
	var created []string
	defer func() {
		if retErr != nil {
			for _, n := range created {
				d.volumes.Remove(n)
			}
		}
	}()
	taken := map[string]bool{}
	for _, b := range c.HostConfig.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			taken[path.Clean(parts[1])] = true
		}
	}
	for _, m := range c.HostConfig.Mounts {
		taken[path.Clean(m.Target)] = true
	}
	for dest := range c.HostConfig.Tmpfs {
		taken[path.Clean(dest)] = true
	}
	add := func(name, dest string, rw, nocopy bool, mode, driver string, opts, labels map[string]string) error {
		if !path.IsAbs(dest) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid mount config: mount path %q must be absolute", dest))
		}
		dest = path.Clean(dest)
		if dest == "/" {
			return errdefs.InvalidParameter(errors.New("invalid specification: destination can't be '/'"))
		}
		v, err := d.volumes.Get(name)
		if name == "" || errdefs.IsNotFound(err) {
			if v, err = d.volumes.Create(name, driver, opts, labels); err != nil {
				return err
			}
			created = append(created, v.Name)
			d.emitVolume(v.Name, events.ActionCreate, map[string]string{"driver": v.Driver})
		} else if err != nil {
			return err
		}
		c.Volumes = append(c.Volumes, VolumeMount{Name: v.Name, Source: d.volumes.Mountpoint(v.Name), Destination: dest, RW: rw, NoCopy: nocopy, Mode: mode})
		taken[dest] = true
		return nil
	}
	var binds []string
	for _, b := range c.HostConfig.Binds {
		if !isVolumeBind(b) {
			binds = append(binds, b)
			continue
		}
		parts := strings.Split(b, ":")
		name, dest, mode := "", parts[0], ""
		if len(parts) > 1 {
			name, dest = parts[0], parts[1]
		}
		if len(parts) == 3 {
			mode = parts[2]
		} else if name != "" {
			mode = "z" // what dockerd reports for a named -v without a mode
		}
		opts := strings.Split(mode, ",")
		delete(taken, path.Clean(dest))
		if err := add(name, dest, !slices.Contains(opts, "ro"), slices.Contains(opts, "nocopy"), mode, c.HostConfig.VolumeDriver, nil, nil); err != nil {
			return err
		}
	}
	for _, m := range c.HostConfig.Mounts {
		if m.Type != mount.TypeVolume {
			continue
		}
		var opts, labels map[string]string
		nocopy, driver := false, c.HostConfig.VolumeDriver
		if vo := m.VolumeOptions; vo != nil {
			nocopy = vo.NoCopy
			labels = vo.Labels
			if vo.DriverConfig != nil {
				opts = vo.DriverConfig.Options
				if vo.DriverConfig.Name != "" {
					driver = vo.DriverConfig.Name
				}
			}
		}
		delete(taken, path.Clean(m.Target))
		if err := add(m.Source, m.Target, !m.ReadOnly, nocopy, "z", driver, opts, labels); err != nil {
			return err
		}
	}
	for _, from := range c.HostConfig.VolumesFrom {
		id, mode, _ := strings.Cut(from, ":")
		other, err := d.Get(id)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", id, err))
		}
		other.mu.Lock()
		vols := slices.Clone(other.Volumes)
		for _, mp := range mountPoints(other.HostConfig) {
			if mp.Type == mount.TypeBind {
				vols = append(vols, VolumeMount{Source: mp.Source, Destination: path.Clean(mp.Destination), RW: mp.RW, Mode: mp.Mode})
			}
		}
		other.mu.Unlock()
		for _, vm := range vols {
			if taken[vm.Destination] {
				continue
			}
			rw := vm.RW
			switch mode {
			case "ro":
				rw = false
			case "rw":
				rw = true
			}
			if vm.Name == "" { // the other container's host bind
				c.Volumes = append(c.Volumes, VolumeMount{Source: vm.Source, Destination: vm.Destination, RW: rw, Mode: vm.Mode})
				taken[vm.Destination] = true
				continue
			}
			if err := add(vm.Name, vm.Destination, rw, true, vm.Mode, "", nil, nil); err != nil {
				return err
			}
		}
	}
	dests := make([]string, 0, len(c.Config.Volumes)+len(imgVolumes))
	for dest := range c.Config.Volumes {
		dests = append(dests, dest)
	}
	for dest := range imgVolumes {
		dests = append(dests, dest)
	}
	sort.Strings(dests)
	for _, dest := range dests {
		if taken[path.Clean(dest)] {
			continue
		}
		if err := add("", dest, true, false, "", c.HostConfig.VolumeDriver, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// specHostConfig is c's HostConfig as specgen should see it: every volume
// replaced by a bind of its host path (held by mountVolumes).
func specHostConfig(hc *container.HostConfig, paths map[string]string, vols []VolumeMount) *container.HostConfig {
	if len(vols) == 0 {
		return hc
	}
	out := *hc
	out.Binds = nil
	for _, b := range hc.Binds {
		if !isVolumeBind(b) {
			out.Binds = append(out.Binds, b)
		}
	}
	out.Mounts = nil
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeVolume {
			out.Mounts = append(out.Mounts, m)
		}
	}
	for _, vm := range vols {
		src := paths[vm.Name]
		if vm.Name == "" {
			src = vm.Source
		}
		b := src + ":" + vm.Destination
		if !vm.RW {
			b += ":ro"
		}
		out.Binds = append(out.Binds, b)
	}
	return &out
}

// mountVolumes mounts c's volumes (tmpfs/bind-backed ones for real),
// populates empty ones from the image at the first start, and returns the
// host path of each volume by name.
func (d *Daemon) mountVolumes(c *Container, rootfs string) (map[string]string, error) {
	paths := map[string]string{}
	for _, vm := range c.Volumes {
		if vm.Name == "" {
			continue // a host bind
		}
		p, err := d.volumes.Mount(vm.Name, c.ID)
		if err != nil {
			d.unmountVolumes(c)
			return nil, err
		}
		paths[vm.Name] = p
		d.emitVolume(vm.Name, events.ActionMount, map[string]string{
			"container": c.ID, "destination": vm.Destination, "driver": volume.DriverLocal,
			"propagation": "", "read/write": fmt.Sprint(vm.RW),
		})
		// Volumes were populated at create (populateVolumes), except
		// tmpfs-backed ones, whose content does not outlive their mount:
		// they get the image's content at the container's first start.
		if vm.NoCopy || !c.State.StartedAt.IsZero() || !d.ephemeralVolume(vm.Name) {
			continue
		}
		if empty, err := volume.Empty(p); err != nil || !empty {
			continue
		}
		src, err := securejoin.SecureJoin(rootfs, vm.Destination)
		if err != nil {
			continue
		}
		if err := volume.CopyUp(src, p); err != nil {
			d.unmountVolumes(c)
			return nil, fmt.Errorf("populate volume %s: %w", vm.Name, err)
		}
	}
	return paths, nil
}

// ephemeralVolume reports whether the volume's content lives only while it
// is mounted (a tmpfs-backed volume).
func (d *Daemon) ephemeralVolume(name string) bool {
	v, err := d.volumes.Get(name)
	return err == nil && v.Ephemeral()
}

// populateVolumes copies the image's content at each volume's mount point
// into the volumes that are still empty, when the container is created, as
// docker does: `volume inspect`, `cp` and other containers see the content
// before the first start. The container's rootfs is mounted (for reading,
// under its directory) only when some volume may need it; tmpfs-backed
// volumes are left to the first start (mountVolumes).
func (d *Daemon) populateVolumes(c *Container, img *image.Image) (retErr error) {
	var todo []VolumeMount
	for _, vm := range c.Volumes {
		if vm.Name == "" || vm.NoCopy || d.ephemeralVolume(vm.Name) {
			continue
		}
		todo = append(todo, vm)
	}
	if len(todo) == 0 {
		return nil
	}
	rootfs := filepath.Join(d.containerDir(c.ID), "copy-up")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return fmt.Errorf("populate volumes of %s: %w", c.ID[:12], err)
	}
	defer os.Remove(rootfs)
	mounted := false
	defer func() {
		if mounted {
			if err := d.images.UnmountRootfs(rootfs); err != nil && retErr == nil {
				retErr = fmt.Errorf("populate volumes of %s: %w", c.ID[:12], err)
			}
		}
	}()
	for _, vm := range todo {
		if err := d.copyUp(c, vm, img, rootfs, &mounted); err != nil {
			return fmt.Errorf("populate volume %s at %s: %w", vm.Name, vm.Destination, err)
		}
	}
	return nil
}

// copyUp copies the image's content at vm.Destination into the volume if
// the volume is empty and the image has a directory there, mounting the
// rootfs at rootfs first unless *mounted. A bind-backed volume is mounted
// only when there is something to copy, as dockerd's copy-up does: one
// whose device is missing fails here only if the image has content there.
func (d *Daemon) copyUp(c *Container, vm VolumeMount, img *image.Image, rootfs string, mounted *bool) error {
	v, err := d.volumes.Get(vm.Name)
	if err != nil {
		return err
	}
	if !v.Backed() {
		// the common case, checked without mounting anything
		if empty, err := volume.Empty(d.volumes.Mountpoint(vm.Name)); err != nil || !empty {
			return err
		}
	}
	if !*mounted {
		// Volatile: only read here, and its unmount skips the syncfs of
		// the host's file system that a plain overlay's costs; the next
		// mount (the start) clears the volatile marker.
		if err := d.images.MountRootfsVolatile(c.ID, img, rootfs); err != nil {
			return fmt.Errorf("mount root filesystem: %w", err)
		}
		*mounted = true
	}
	src, err := securejoin.SecureJoin(rootfs, vm.Destination)
	if err != nil {
		return err
	}
	if st, err := os.Lstat(src); err != nil || !st.IsDir() {
		return nil // nothing (or a file) at the mount point: nothing to copy
	}
	// Held under a reference of its own: a bind-backed volume is mounted
	// for the copy and unmounted after, unless a container holds it.
	ref := "copy-up-" + c.ID
	p, err := d.volumes.Mount(vm.Name, ref)
	if err != nil {
		return err
	}
	defer d.volumes.Unmount(vm.Name, ref)
	if empty, err := volume.Empty(p); err != nil || !empty {
		return err
	}
	return volume.CopyUp(src, p)
}

// holdVolumes re-registers a running container's hold on its volumes
// after a daemon restart (backed ones are still mounted).
func (d *Daemon) holdVolumes(c *Container) {
	for _, vm := range c.Volumes {
		if vm.Name == "" {
			continue
		}
		if _, err := d.volumes.Mount(vm.Name, c.ID); err != nil {
			d.log.Warn("hold volume", "volume", vm.Name, "id", c.ID, "err", err)
		}
	}
}

// unmountVolumes drops c's hold on its volumes.
func (d *Daemon) unmountVolumes(c *Container) {
	for _, vm := range c.Volumes {
		if vm.Name == "" {
			continue
		}
		held := d.volumes.Held(vm.Name, c.ID)
		if err := d.volumes.Unmount(vm.Name, c.ID); err != nil {
			d.log.Warn("unmount volume", "volume", vm.Name, "id", c.ID, "err", err)
		} else if held {
			d.emitVolume(vm.Name, events.ActionUnmount, map[string]string{"container": c.ID, "driver": volume.DriverLocal})
		}
	}
}

// volumeMountPoints are c's volumes as inspect and ps show them; c.mu is
// held by the caller.
func (c *Container) volumeMountPoints() []container.MountPoint {
	var out []container.MountPoint
	for _, vm := range c.Volumes {
		if vm.Name == "" {
			out = append(out, container.MountPoint{Type: mount.TypeBind, Source: vm.Source, Destination: vm.Destination,
				Mode: vm.Mode, RW: vm.RW, Propagation: mount.PropagationRPrivate})
			continue
		}
		out = append(out, container.MountPoint{
			Type: mount.TypeVolume, Name: vm.Name, Source: vm.Source,
			Destination: vm.Destination, Driver: volume.DriverLocal, Mode: vm.Mode, RW: vm.RW,
		})
	}
	return out
}

// volumeUsers returns the IDs of the containers that use volume name.
func (d *Daemon) volumeUsers(name string) []string {
	cs := d.containerList()
	var ids []string
	for _, c := range cs {
		c.mu.Lock()
		for _, vm := range c.Volumes {
			if vm.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.mu.Unlock()
	}
	sort.Strings(ids)
	return ids
}

// removeAnonymousVolumes deletes the anonymous volumes of a removed
// container that no other container uses (rm -v, run --rm).
func (d *Daemon) removeAnonymousVolumes(c *Container) {
	for _, vm := range c.Volumes {
		v, err := d.volumes.Get(vm.Name)
		if err != nil || !v.Anonymous() || len(d.volumeUsers(vm.Name)) > 0 {
			continue
		}
		if err := d.volumes.Remove(vm.Name); err != nil {
			d.log.Warn("remove anonymous volume", "volume", vm.Name, "err", err)
			continue
		}
		d.emitVolume(vm.Name, events.ActionDestroy, map[string]string{"driver": volume.DriverLocal})
	}
}

func (d *Daemon) apiVolume(v *volume.Volume) *volumetypes.Volume {
	labels, opts := v.Labels, v.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if len(opts) == 0 {
		opts = nil
	}
	return &volumetypes.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: d.volumes.Mountpoint(v.Name), Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: labels, Options: opts,
	}
}

// VolumeCreate serves POST /volumes/create.
func (d *Daemon) VolumeCreate(ctx context.Context, req *volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	name := req.Name
	if name == "" {
		// generated, but not anonymous: prune keeps it unless --all
		name = volume.NewName()
	}
	_, existed := d.volumes.Get(name)
	v, err := d.volumes.Create(name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return nil, err
	}
	if existed != nil {
		d.emitVolume(v.Name, events.ActionCreate, map[string]string{"driver": v.Driver})
	}
	return d.apiVolume(v), nil
}

// VolumeInspect serves GET /volumes/{name}.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	v, err := d.volumes.Get(name)
	if err != nil {
		return nil, err
	}
	return d.apiVolume(v), nil
}

// VolumeList serves GET /volumes with the filters dangling, name, label
// and driver.
func (d *Daemon) VolumeList(ctx context.Context, f api.Filters) ([]volumetypes.Volume, error) {
	for k := range f {
		switch k {
		case "dangling", "name", "label", "driver":
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s'", k))
		}
	}
	out := []volumetypes.Volume{}
	for _, v := range d.volumes.List() {
		if !matchFilter(f["name"], func(s string) bool { return strings.Contains(v.Name, s) }) ||
			!matchFilter(f["driver"], func(s string) bool { return v.Driver == s }) ||
			!matchLabels(f["label"], v.Labels) {
			continue
		}
		if len(f["dangling"]) > 0 {
			dangling := f["dangling"]["true"] || f["dangling"]["1"]
			if dangling != (len(d.volumeUsers(v.Name)) == 0) {
				continue
			}
		}
		out = append(out, *d.apiVolume(v))
	}
	return out, nil
}

// VolumeRemove serves DELETE /volumes/{name}; force only ignores a
// missing volume, as docker's.
func (d *Daemon) VolumeRemove(ctx context.Context, name string, force bool) error {
	v, err := d.volumes.Get(name)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if users := d.volumeUsers(v.Name); len(users) > 0 {
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	if err := d.volumes.Remove(v.Name); err != nil {
		return err
	}
	d.emitVolume(v.Name, events.ActionDestroy, map[string]string{"driver": v.Driver})
	return nil
}

// VolumePrune serves POST /volumes/prune: unused anonymous volumes, or
// every unused volume with the filter all=true; label filters narrow it.
func (d *Daemon) VolumePrune(ctx context.Context, f api.Filters) (*volumetypes.PruneReport, error) {
	all := false
	for k, set := range f {
		switch k {
		case "all":
			all = set["true"] || set["1"]
		case "label", "label!":
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s'", k))
		}
	}
	rep := &volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range d.volumes.List() {
		if (!all && !v.Anonymous()) || len(d.volumeUsers(v.Name)) > 0 {
			continue
		}
		if !matchLabels(f["label"], v.Labels) || (len(f["label!"]) > 0 && matchLabels(f["label!"], v.Labels)) {
			continue
		}
		size := d.volumes.Size(v.Name)
		if err := d.volumes.Remove(v.Name); err != nil {
			d.log.Warn("prune volume", "volume", v.Name, "err", err)
			continue
		}
		d.emitVolume(v.Name, events.ActionDestroy, map[string]string{"driver": v.Driver})
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		if size > 0 {
			rep.SpaceReclaimed += uint64(size)
		}
	}
	return rep, nil
}

// volumeUsage is the volumes part of /system/df.
func (d *Daemon) volumeUsage() *volumetypes.DiskUsage {
	u := &volumetypes.DiskUsage{Items: []volumetypes.Volume{}}
	for _, v := range d.volumes.List() {
		av := d.apiVolume(v)
		refs := int64(len(d.volumeUsers(v.Name)))
		size := d.volumes.Size(v.Name)
		av.UsageData = &volumetypes.UsageData{RefCount: refs, Size: size}
		u.Items = append(u.Items, *av)
		u.TotalCount++
		if refs > 0 {
			u.ActiveCount++
		} else if size > 0 {
			u.Reclaimable += size
		}
		if size > 0 {
			u.TotalSize += size
		}
	}
	return u
}

// matchFilter reports whether set is empty or one value satisfies ok.
func matchFilter(set map[string]bool, ok func(string) bool) bool {
	if len(set) == 0 {
		return true
	}
	for v := range set {
		if ok(v) {
			return true
		}
	}
	return false
}

// matchLabels reports whether labels has every "key" or "key=value" in set.
func matchLabels(set map[string]bool, labels map[string]string) bool {
	for want := range set {
		k, v, hasV := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// emitVolume publishes a volume event (create, destroy, mount, unmount).
func (d *Daemon) emitVolume(name string, action events.Action, attrs map[string]string) {
	now := time.Now()
	d.events.publish(events.Message{
		Type: events.VolumeEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: name, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// volumePath is the host path of a volume mount's content, for cp.
func (d *Daemon) volumePath(vm VolumeMount) string {
	if vm.Name == "" {
		return filepath.Clean(vm.Source)
	}
	return filepath.Clean(d.volumes.Mountpoint(vm.Name))
}
