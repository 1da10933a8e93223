package daemon

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"

	"berth/internal/api"
)

func TestIsVolumeBind(t *testing.T) {
	for b, want := range map[string]bool{
		"/data":            true, // anonymous
		"vol:/data":        true,
		"vol:/data:ro":     true,
		"/host:/data":      false,
		"/host:/data:ro,z": false,
	} {
		if got := isVolumeBind(b); got != want {
			t.Errorf("isVolumeBind(%q) = %v, want %v", b, got, want)
		}
	}
}

func TestSpecHostConfigReplacesVolumes(t *testing.T) {
	hc := &container.HostConfig{
		Binds: []string{"/host:/h", "named:/n:ro"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "m", Target: "/m"},
			{Type: mount.TypeTmpfs, Target: "/tmp"},
		},
	}
	vols := []VolumeMount{
		{Name: "named", Destination: "/n", RW: false},
		{Name: "m", Destination: "/m", RW: true},
		{Name: "anon", Destination: "/a", RW: true},
	}
	paths := map[string]string{"named": "/v/named/_data", "m": "/v/m/_data", "anon": "/v/anon/_data"}
	out := specHostConfig(hc, paths, vols)
	want := []string{"/host:/h", "/v/named/_data:/n:ro", "/v/m/_data:/m", "/v/anon/_data:/a"}
	if !slices.Equal(out.Binds, want) {
		t.Fatalf("binds %v, want %v", out.Binds, want)
	}
	if len(out.Mounts) != 1 || out.Mounts[0].Type != mount.TypeTmpfs {
		t.Fatalf("mounts %+v", out.Mounts)
	}
	if len(hc.Binds) != 2 || len(hc.Mounts) != 2 {
		t.Fatal("the container's own HostConfig was modified")
	}
}

func TestMatchLabels(t *testing.T) {
	labels := map[string]string{"a": "1", "b": ""}
	for _, tc := range []struct {
		set  api.Filters
		want bool
	}{
		{api.Filters{}, true},
		{api.Filters{"label": {"a": true}}, true},
		{api.Filters{"label": {"a=1": true, "b": true}}, true},
		{api.Filters{"label": {"a=2": true}}, false},
		{api.Filters{"label": {"c": true}}, false},
	} {
		if got := matchLabels(tc.set["label"], labels); got != tc.want {
			t.Errorf("matchLabels(%v) = %v, want %v", tc.set, got, tc.want)
		}
	}
}

// TestVolumeEventFilter: volume=NAME keeps only that volume's events, and
// type/event narrow volume events as they do the others.
func TestVolumeEventFilter(t *testing.T) {
	vol := func(name string, action events.Action) events.Message {
		return events.Message{Type: events.VolumeEventType, Action: action, Actor: events.Actor{ID: name, Attributes: map[string]string{"driver": "local"}}}
	}
	ctr := events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: "c1", Attributes: map[string]string{"name": "web"}}}
	set := func(vals ...string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vals {
			m[v] = true
		}
		return m
	}
	for _, tc := range []struct {
		f    api.Filters
		m    events.Message
		want bool
	}{
		{api.Filters{"volume": set("v1")}, vol("v1", events.ActionMount), true},
		{api.Filters{"volume": set("v1")}, vol("v2", events.ActionMount), false},
		{api.Filters{"volume": set("v1")}, ctr, false},
		{api.Filters{"type": set("volume")}, vol("v2", events.ActionCreate), true},
		{api.Filters{"type": set("volume")}, ctr, false},
		{api.Filters{"type": set("volume"), "event": set("destroy", "unmount")}, vol("v1", events.ActionUnmount), true},
		{api.Filters{"type": set("volume"), "event": set("destroy", "unmount")}, vol("v1", events.ActionMount), false},
		{api.Filters{"container": set("web")}, vol("v1", events.ActionMount), false},
	} {
		if got := matchEvent(tc.m, tc.f); got != tc.want {
			t.Errorf("matchEvent(%s %s %s, %v) = %v, want %v", tc.m.Type, tc.m.Action, tc.m.Actor.ID, tc.f, got, tc.want)
		}
	}
}
