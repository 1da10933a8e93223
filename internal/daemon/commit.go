package daemon

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"berth/internal/archive"
	"berth/internal/image"
)

// Commit creates an image from a container's writable layer: the image's
// config is the container's (over its image's), then the changes applied.
func (d *Daemon) Commit(ctx context.Context, name, repo, tag, author, comment string, changes []string, pause bool) (string, error) {
	c, err := d.Get(name)
	if err != nil {
		return "", err
	}
	parent, err := d.images.Resolve(c.ImageID.String())
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	cfg := parent.DockerConfig()
	overlayConfig(&cfg.ImageConfig.Env, &cfg.ImageConfig.Cmd, &cfg.ImageConfig.Entrypoint, c.Config)
	if c.Config.WorkingDir != "" {
		cfg.WorkingDir = c.Config.WorkingDir
	}
	if c.Config.User != "" {
		cfg.User = c.Config.User
	}
	if c.Config.StopSignal != "" {
		cfg.StopSignal = c.Config.StopSignal
	}
	if len(c.Config.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for k, v := range c.Config.Labels {
			cfg.Labels[k] = v
		}
	}
	if c.Config.Healthcheck != nil {
		cfg.Healthcheck = c.Config.Healthcheck
	}
	running := c.State.Status == container.StateRunning
	c.mu.Unlock()
	cfg, err = image.ApplyChanges(cfg, changes)
	if err != nil {
		return "", err
	}
	if pause && running {
		if err := d.rt.Pause(c.ID); err == nil {
			defer d.rt.Resume(c.ID)
		}
	}
	id, err := d.images.Commit(ctx, c.ID, parent, cfg, author, comment)
	if err != nil {
		return "", err
	}
	if repo != "" {
		ref := repo
		if tag != "" {
			ref += ":" + tag
		}
		if err := d.images.Tag(id, ref); err != nil {
			return "", err
		}
	}
	d.emit(c, events.ActionCommit, nil)
	return id.String(), nil
}

// overlayConfig puts the container's own Env/Cmd/Entrypoint over the
// image's, as docker's commit does.
func overlayConfig(env, cmd, entry *[]string, cfg *container.Config) {
	if len(cfg.Env) > 0 {
		*env = mergeEnv(*env, cfg.Env)
	}
	if cfg.Entrypoint != nil {
		*entry = cfg.Entrypoint
		*cmd = cfg.Cmd
	} else if len(cfg.Cmd) > 0 {
		*cmd = cfg.Cmd
	}
}

// ContainerExport writes the container's root filesystem as a tar (through
// openFS: a stopped container's root is mounted for the duration, a running
// one is frozen).
func (d *Daemon) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	fs, err := d.openFS(c)
	if err != nil {
		return err
	}
	defer fs.close()
	if err := archive.WriteTree(ctx, w, fs.root, archive.WriteOptions{}); err != nil {
		return err
	}
	d.emit(c, events.ActionExport, nil)
	return nil
}
