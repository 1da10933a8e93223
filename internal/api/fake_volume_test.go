package api

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/moby/api/types/volume"

	"berth/internal/errdefs"
)

// fakeVolumes is the in-memory VolumeBackend half of fakeBackend.
type fakeVolumes struct {
	mu   sync.Mutex
	vols map[string]volume.Volume
}

func (f *fakeVolumes) VolumeCreate(ctx context.Context, req *volume.CreateRequest) (*volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vols == nil {
		f.vols = map[string]volume.Volume{}
	}
	name := req.Name
	if name == "" {
		name = fakeID(fmt.Sprint(len(f.vols)))
	}
	v := volume.Volume{Name: name, Driver: "local", Scope: "local", Mountpoint: "/v/" + name + "/_data",
		Labels: req.Labels, Options: req.DriverOpts}
	f.vols[name] = v
	return &v, nil
}

func (f *fakeVolumes) VolumeList(ctx context.Context, filters Filters) ([]volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []volume.Volume{}
	for _, v := range f.vols {
		out = append(out, v)
	}
	return out, nil
}

func (f *fakeVolumes) VolumeInspect(ctx context.Context, name string) (*volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[name]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	return &v, nil
}

func (f *fakeVolumes) VolumeRemove(ctx context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[name]; !ok && !force {
		return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	delete(f.vols, name)
	return nil
}

func (f *fakeVolumes) VolumePrune(ctx context.Context, filters Filters) (*volume.PruneReport, error) {
	return &volume.PruneReport{}, nil
}
