package daemon

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// DiskUsage serves /system/df.
//
// The images' total (LayersSize) is docker's: the unpacked size of every
// distinct layer, the unit of each image's Size and SharedSize, so that the
// CLI's RECLAIMABLE (total minus the unique part of the images containers
// use) is the size of the images no container uses. It matches du of the
// unpacked layers (<data-root>/snapshots); du of the whole store is larger
// by the compressed blobs berth keeps for push and save (content/), which
// dockerd's overlay2 store discards after a pull. `image prune` and
// `system prune` report what they free on disk, blobs included. See
// docs/networks-volumes.md.
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
	layers := map[digest.Digest]int64{}
	for _, iu := range u.Images {
		shared[iu.Image.ID.String()] = iu.SharedSize
		for _, l := range iu.Image.Layers {
			layers[l.ChainID] = l.Size
		}
	}
	var layersSize int64
	for _, n := range layers {
		layersSize += n
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
		ImageUsage:      &imagetypes.DiskUsage{ActiveCount: active, TotalCount: int64(len(imgs)), TotalSize: layersSize, Items: imgs},
		ContainerUsage:  &container.DiskUsage{ActiveCount: running, TotalCount: int64(len(cs)), TotalSize: rw, Items: cs},
		VolumeUsage:     d.volumeUsage(),
		BuildCacheUsage: d.buildCacheUsage(),
	}, nil
}
