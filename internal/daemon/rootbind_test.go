package daemon

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestCheckRootBinds(t *testing.T) {
	d := &Daemon{cfg: Config{DataRoot: "/var/lib/berth"}}
	hc := &container.HostConfig{
		Binds: []string{
			"/var/lib/berth:/foo",
			"/var/lib/berth/containers:/foo:ro",
			"/var:/foo:rshared",
			"/srv:/foo",
		},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/lib/berth", Target: "/foo"}},
	}
	if err := d.checkRootBinds(hc); err != nil {
		t.Fatal(err)
	}
	want := []string{"/var/lib/berth:/foo:rslave", "/var/lib/berth/containers:/foo:ro,rslave", "/var:/foo:rshared", "/srv:/foo"}
	for i, b := range hc.Binds {
		if b != want[i] {
			t.Errorf("bind %d = %q, want %q", i, b, want[i])
		}
	}
	if hc.Mounts[0].BindOptions == nil || hc.Mounts[0].BindOptions.Propagation != mount.PropagationRSlave {
		t.Errorf("mount propagation = %+v, want rslave", hc.Mounts[0].BindOptions)
	}
	mps := mountPoints(hc)
	if mps[0].Propagation != mount.PropagationRSlave || mps[1].RW || mps[3].Propagation != mount.PropagationRPrivate || mps[4].Propagation != mount.PropagationRSlave {
		t.Errorf("mount points = %+v", mps)
	}

	for _, hc := range []*container.HostConfig{
		{Binds: []string{"/var/lib/berth:/foo:private"}},
		{Binds: []string{"/var/lib/berth/containers:/foo:shared"}},
		{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/lib", Target: "/foo", BindOptions: &mount.BindOptions{Propagation: mount.PropagationSlave}}}},
	} {
		if err := d.checkRootBinds(hc); err == nil {
			t.Errorf("%+v %+v: want an error", hc.Binds, hc.Mounts)
		}
	}
}

func TestLookupLink(t *testing.T) {
	db := &Container{ID: "db1id"}
	app := &Container{ID: "app1id", HostConfig: &container.HostConfig{Links: []string{"/db1:/app1/mysql"}}}
	db.HostConfig = &container.HostConfig{}
	d := &Daemon{
		containers: map[string]*Container{db.ID: db, app.ID: app},
		names:      map[string]string{"/db1": db.ID, "/app2": app.ID}, // app1 renamed to app2
	}
	for _, name := range []string{"app2/mysql", "/app2/mysql"} {
		c, err := d.lookup(name)
		if err != nil || c != db {
			t.Errorf("lookup(%q) = %v, %v; want db1", name, c, err)
		}
	}
	if _, err := d.lookup("app2/other"); err == nil {
		t.Error("lookup(app2/other): want an error")
	}
}
