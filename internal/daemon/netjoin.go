package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	"berth/internal/errdefs"
)

// A container started with --network container:<name|id> runs in the
// network namespace of that running "donor" container: it gets no endpoint
// of its own, and, as with dockerd, it shares the donor's /etc/hostname,
// /etc/hosts and /etc/resolv.conf and takes the donor's host name (in its
// own UTS namespace). checkNetContainerMode refuses at create the settings
// that would contradict the donor's (hostname, DNS, ports, links).

// netDonor returns the running container target whose network namespace
// the container selfID joins, with dockerd's errors: a missing donor is a
// system error (the mode was accepted at create), a stopped one a conflict.
func (d *Daemon) netDonor(selfID, target string) (*Container, error) {
	nc, err := d.Get(target)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("joining network namespace of container: %w", errors.Unwrap(err))
		}
		return nil, fmt.Errorf("joining network namespace of container: %w", err)
	}
	if nc.ID == selfID {
		return nil, errors.New("cannot join own network namespace")
	}
	nc.mu.Lock()
	status, pid := nc.State.Status, nc.State.Pid
	nc.mu.Unlock()
	switch {
	case status == container.StateRestarting:
		return nil, fmt.Errorf("cannot join network namespace of container: container %s is restarting, wait until the container is running", nc.ID)
	case status != container.StateRunning || pid <= 0:
		return nil, errdefs.Conflict(fmt.Errorf("cannot join network namespace of a non running container: container %s is %s", strings.TrimPrefix(nc.Name, "/"), status))
	}
	return nc, nil
}

// joinedEtcFiles are the donor's /etc files for a container-mode joiner;
// the joiner's Config.Hostname and Domainname become the donor's, as
// dockerd records them.
func (d *Daemon) joinedEtcFiles(c *Container) (etcFiles, error) {
	nc, err := d.netDonor(c.ID, c.HostConfig.NetworkMode.ConnectedContainer())
	if err != nil {
		return etcFiles{}, err
	}
	dir := d.containerDir(nc.ID)
	f := etcFiles{filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")}
	b, err := os.ReadFile(f.hostname)
	if err != nil {
		return etcFiles{}, fmt.Errorf("joining network namespace of container %s: %w", nc.ID[:12], err)
	}
	nc.mu.Lock()
	domain := nc.Config.Domainname
	nc.mu.Unlock()
	c.mu.Lock()
	c.Config.Hostname = strings.TrimSpace(string(b))
	c.Config.Domainname = domain
	c.mu.Unlock()
	return f, nil
}
