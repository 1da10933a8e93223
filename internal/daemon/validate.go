package daemon

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
	"berth/internal/specgen"
)

// checkCreate validates a create request's Config and HostConfig the way
// dockerd's verifyContainerSettings does, with its messages (clients and
// moby's integration tests match on them), and fills the defaults dockerd
// records at create so that inspect shows them: the daemon's IPC mode, the
// masked and read-only paths, cleaned working directory, normalised links.
// name is the new container's name with its leading "/". Errors are
// errdefs.InvalidParameter.
func (d *Daemon) checkCreate(name string, cfg *container.Config, hc *container.HostConfig) error {
	if err := checkConfig(cfg); err != nil {
		return errdefs.InvalidParameter(err)
	}
	if err := checkModes(hc); err != nil {
		return errdefs.InvalidParameter(err)
	}
	if err := checkNetContainerMode(cfg, hc); err != nil {
		return errdefs.InvalidParameter(err)
	}
	if err := specgen.ValidateSecurityOpts(hc.SecurityOpt); err != nil {
		return errdefs.InvalidParameter(err)
	}
	for dest := range hc.Tmpfs {
		if path.Clean(strings.ReplaceAll(dest, `\`, `/`)) == "/" {
			return errdefs.InvalidParameter(errors.New("invalid specification: destination can't be '/'"))
		}
		if !path.IsAbs(dest) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid mount path: '%s' mount path must be absolute", dest))
		}
	}
	if err := d.checkRootBinds(hc); err != nil {
		return err
	}
	for _, from := range hc.VolumesFrom {
		id, _, _ := strings.Cut(from, ":")
		if _, err := d.Get(id); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", id, err))
		}
	}
	for _, ns := range []struct {
		what, target string
	}{
		{"PID", pidModeTarget(hc.PidMode)},
		{"IPC", ipcModeTarget(hc.IpcMode)},
	} {
		if ns.target == "" {
			continue
		}
		if _, err := d.Get(ns.target); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	links, err := d.normaliseLinks(name, hc.Links)
	if err != nil {
		return err
	}
	hc.Links = links

	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate // dockerd's default-ipc-mode
	}
	if !hc.Privileged {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = specgen.DefaultMaskedPaths()
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = specgen.DefaultReadonlyPaths()
		}
	}
	return nil
}

// checkConfig is dockerd's validateContainerConfig (the health check is
// validated with the health check code).
func checkConfig(cfg *container.Config) error {
	if cfg.WorkingDir != "" {
		if !filepath.IsAbs(cfg.WorkingDir) {
			return fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
		}
		cfg.WorkingDir = filepath.Clean(cfg.WorkingDir)
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	for _, kv := range cfg.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return fmt.Errorf("invalid environment variable: %s", kv)
		}
	}
	return nil
}

// checkNetContainerMode is dockerd's validateNetContainerMode: a container
// that joins another's network namespace takes that container's hostname,
// /etc/hosts, resolv.conf and ports, so it cannot set its own.
func checkNetContainerMode(cfg *container.Config, hc *container.HostConfig) error {
	if hc.NetworkMode != "container" && !hc.NetworkMode.IsContainer() {
		return nil
	}
	switch {
	case hc.NetworkMode.ConnectedContainer() == "":
		return errors.New("invalid network mode: invalid container format container:<name|id>")
	case cfg.Hostname != "":
		return errors.New("conflicting options: hostname and the network mode")
	case len(hc.Links) > 0:
		return errors.New("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	case len(hc.DNS) > 0:
		return errors.New("conflicting options: dns and the network mode")
	case len(hc.ExtraHosts) > 0:
		return errors.New("conflicting options: custom host-to-IP mapping and the network mode")
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		return errors.New("conflicting options: port publishing and the container type network mode")
	case len(cfg.ExposedPorts) > 0:
		return errors.New("conflicting options: port exposing and the container type network mode")
	}
	return nil
}

// checkModes validates the namespace modes and the other host settings
// dockerd checks on Linux before anything is created.
func checkModes(hc *container.HostConfig) error {
	if !hc.IpcMode.Valid() {
		return fmt.Errorf("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return fmt.Errorf("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return fmt.Errorf("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return fmt.Errorf("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if hc.ShmSize < 0 {
		return errors.New("SHM size can not be less than 0")
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return fmt.Errorf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.CPUShares < 0 {
		return fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", hc.CPUShares)
	}
	for k := range hc.Annotations {
		if k == "" {
			return errors.New("invalid Annotations: the empty string is not permitted as an annotation key")
		}
	}
	return nil
}

// pidModeTarget is the container named by "container:<name|id>", or "".
func pidModeTarget(m container.PidMode) string {
	if m.IsContainer() {
		return m.Container()
	}
	return ""
}

func ipcModeTarget(m container.IpcMode) string {
	if m.IsContainer() {
		return m.Container()
	}
	return ""
}

// normaliseLinks resolves legacy links ("name[:alias]") to dockerd's stored
// form "/<target>:/<name>/<alias>"; a missing target is an invalid
// parameter ("could not get container for x").
func (d *Daemon) normaliseLinks(name string, links []string) ([]string, error) {
	if len(links) == 0 {
		return links, nil
	}
	out := make([]string, 0, len(links))
	for _, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = target
		}
		c, err := d.Get(target)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", target, err))
		}
		c.mu.Lock()
		tname := c.Name
		c.mu.Unlock()
		alias = strings.TrimPrefix(alias, "/")
		if i := strings.LastIndex(alias, "/"); i >= 0 {
			alias = alias[i+1:] // already normalised: "/b/a"
		}
		out = append(out, tname+":"+name+"/"+alias)
	}
	return out, nil
}

// linkNames are the extra names ("/<linker>/<alias>") under which other
// containers' legacy links reach the container named name; d.mu held.
func (d *Daemon) linkNames(name string) []string {
	var out []string
	for _, c := range d.containers {
		for _, l := range c.HostConfig.Links {
			target, as, ok := strings.Cut(l, ":")
			if ok && target == name {
				out = append(out, as)
			}
		}
	}
	return out
}

// etcMountpoints are the files berth creates in the writable layer as
// mount points for the container's hostname, hosts and resolv.conf.
// dockerd keeps them in a hidden "-init" layer, so `docker diff` never
// shows them.
var etcMountpoints = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// hideMountpoints drops the added mount-point files from a diff, and /etc's
// "changed" entry when nothing else below /etc changed.
func hideMountpoints(changes []container.FilesystemChange) []container.FilesystemChange {
	out := changes[:0]
	etcOther := false
	for _, ch := range changes {
		if ch.Kind == container.ChangeAdd && etcMountpoints[ch.Path] {
			continue
		}
		if strings.HasPrefix(ch.Path, "/etc/") {
			etcOther = true
		}
		out = append(out, ch)
	}
	if etcOther {
		return out
	}
	kept := out[:0]
	for _, ch := range out {
		if ch.Path == "/etc" && ch.Kind == container.ChangeModify {
			continue
		}
		kept = append(kept, ch)
	}
	return kept
}

// namespacePaths resolves the PID, IPC and network modes "container:<name>"
// to the namespaces of that container's running process. A PID or IPC
// target that is not running is a system error, as in dockerd (a network
// one a conflict, see netDonor).
func (d *Daemon) namespacePaths(hc *container.HostConfig) (map[specs.LinuxNamespaceType]string, error) {
	out := map[specs.LinuxNamespaceType]string{}
	for _, ns := range []struct {
		typ    specs.LinuxNamespaceType
		what   string
		file   string
		target string
	}{
		{specs.PIDNamespace, "PID", "pid", pidModeTarget(hc.PidMode)},
		{specs.IPCNamespace, "IPC", "ipc", ipcModeTarget(hc.IpcMode)},
	} {
		if ns.target == "" {
			continue
		}
		c, err := d.Get(ns.target)
		if err != nil {
			return nil, fmt.Errorf("failed to join %s namespace: %w", ns.what, err)
		}
		c.mu.Lock()
		pid, running := c.State.Pid, c.State.Status == container.StateRunning
		c.mu.Unlock()
		if !running || pid <= 0 {
			return nil, fmt.Errorf("failed to join %s namespace: container %s is not running", ns.what, c.ID)
		}
		out[ns.typ] = fmt.Sprintf("/proc/%d/ns/%s", pid, ns.file)
	}
	if target := hc.NetworkMode.ConnectedContainer(); target != "" {
		nc, err := d.netDonor("", target)
		if err != nil {
			return nil, err
		}
		nc.mu.Lock()
		pid := nc.State.Pid
		nc.mu.Unlock()
		out[specs.NetworkNamespace] = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	return out, nil
}
