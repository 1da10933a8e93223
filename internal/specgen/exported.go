package specgen

import (
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ResolveUser resolves a docker user string ("name", "uid", "name:group",
// "uid:gid") against rootfs's /etc/passwd and /etc/group, as for `exec -u`.
func ResolveUser(rootfs, user string, groupAdd []string) (specs.User, error) {
	u, _, err := resolveUser(rootfs, user, groupAdd)
	return u, err
}

// Resources translates HostConfig resources into cgroup limits, with the
// same validation as Build (for `update` of a running container).
func Resources(hc *container.HostConfig) (*specs.LinuxResources, error) {
	b := &builder{hc: hc, spec: &specs.Spec{Linux: &specs.Linux{}}}
	if err := b.resources(); err != nil {
		return nil, err
	}
	return b.spec.Linux.Resources, nil
}
