package daemon

import (
	"context"

	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// DiskUsage serves /system/df.
func (d *Daemon) DiskUsage(ctx context.Context) (*system.DiskUsage, error) {
	u, err := d.images.Usage()
	if err != nil {
		return nil, err
	}
	imgs, err := d.ImageList(ctx, true, nil)
	if err != nil {
		return nil, err
	}
	cs, err := d.ContainerList(ctx, true, 0, true, nil)
	if err != nil {
		return nil, err
	}
	shared := map[string]int64{}
	for _, iu := range u.Images {
		shared[iu.Image.ID.String()] = iu.SharedSize
	}
	var active int64
	for i := range imgs {
		imgs[i].SharedSize = shared[imgs[i].ID] // the CLI's RECLAIMABLE needs it (-1 means unknown)
		if imgs[i].Containers > 0 {
			active++
		}
	}
	var rw int64
	var running int64
	for _, c := range cs {
		rw += c.SizeRw
		if c.State == container.StateRunning {
			running++
		}
	}
	return &system.DiskUsage{
		ImageUsage:      &imagetypes.DiskUsage{ActiveCount: active, TotalCount: int64(len(imgs)), TotalSize: u.LayersSize, Items: imgs},
		ContainerUsage:  &container.DiskUsage{ActiveCount: running, TotalCount: int64(len(cs)), TotalSize: rw, Items: cs},
		VolumeUsage:     d.volumeUsage(),
		BuildCacheUsage: d.buildCacheUsage(),
	}, nil
}
