package daemon

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
)

func TestSetupShmDonor(t *testing.T) {
	private := &Container{ID: "privid", BundleDir: t.TempDir(), HostConfig: &container.HostConfig{IpcMode: "private"}}
	host := &Container{ID: "hostid", BundleDir: t.TempDir(), HostConfig: &container.HostConfig{IpcMode: "host"}}
	d := &Daemon{
		containers: map[string]*Container{private.ID: private, host.ID: host},
		names:      map[string]string{"/priv": private.ID, "/host": host.ID},
	}
	shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"}

	joiner := &Container{ID: "j", HostConfig: &container.HostConfig{IpcMode: "container:priv"}}
	err := d.setupShm(joiner, &specs.Spec{Mounts: []specs.Mount{shm}})
	if !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "non-shareable IPC") {
		t.Errorf("join a private donor: err = %v, want an invalid-parameter non-shareable IPC error", err)
	}

	joiner.HostConfig.IpcMode = "container:host"
	spec := &specs.Spec{Mounts: []specs.Mount{shm}}
	if err := d.setupShm(joiner, spec); err != nil {
		t.Fatal(err)
	}
	if m := spec.Mounts[0]; m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("join a host-IPC donor: /dev/shm mount = %+v, want a bind of /dev/shm", m)
	}

	// private: the tmpfs inside the container stays
	spec = &specs.Spec{Mounts: []specs.Mount{shm}}
	if err := d.setupShm(private, spec); err != nil || spec.Mounts[0].Type != "tmpfs" {
		t.Errorf("private: err = %v, mount = %+v", err, spec.Mounts[0])
	}
}
