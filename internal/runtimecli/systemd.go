package runtimecli

import (
	"fmt"
	"path"
	"strings"

	"berth/internal/errdefs"
	"berth/internal/runtime"
)

// systemdCgroupPath turns runc's --systemd-cgroup form of cgroupsPath,
// "slice:prefix:name", into the cgroupfs path systemd itself would use
// ("/system.slice/docker-<id>.scope"; a slice "a-b.slice" nests as
// "/a.slice/a-b.slice"). berth writes cgroups directly, without asking
// systemd, so a caller that speaks systemd's form (podman or containerd
// with the systemd cgroup manager) still gets its container where it
// expects it. Any other form is returned unchanged.
func systemdCgroupPath(p string) (string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 || strings.HasPrefix(p, "/") {
		return p, nil
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" || strings.ContainsAny(slice+prefix+name, "/") {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid systemd cgroupsPath %q: want slice:prefix:name", p))
	}
	if slice == "" {
		slice = "system.slice"
	}
	if !strings.HasSuffix(slice, ".slice") {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid systemd cgroupsPath %q: %q is not a slice", p, slice))
	}
	// "a-b-c.slice" lives in /a.slice/a-b.slice/a-b-c.slice.
	dir := "/"
	if slice != "-.slice" {
		words := strings.Split(strings.TrimSuffix(slice, ".slice"), "-")
		for i := range words {
			dir = path.Join(dir, strings.Join(words[:i+1], "-")+".slice")
		}
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return path.Join(dir, unit), nil
}

// applySystemdCgroup rewrites the spec's cgroupsPath when --systemd-cgroup
// was given (see systemdCgroupPath).
func (g *globals) applySystemdCgroup(o *runtime.CreateOpts) error {
	if !g.systemdCgroup {
		return nil
	}
	if o.Spec == nil {
		s, err := runtime.LoadSpec(o.Bundle)
		if err != nil {
			return err
		}
		o.Spec = s
	}
	if o.Spec.Linux == nil {
		return nil
	}
	p, err := systemdCgroupPath(o.Spec.Linux.CgroupsPath)
	if err != nil {
		return err
	}
	o.Spec.Linux.CgroupsPath = p
	return nil
}
