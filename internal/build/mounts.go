package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/moby/api/types/mount"
)

// runMounts turns a RUN's --mount flags into the extra mounts of its
// container. What they mount is never part of the committed layer: the
// engine mounts it over the container's root filesystem.
//
//   - cache: a directory under Options.CacheMountRoot named after the
//     mount's id (default: its target), kept from build to build;
//   - tmpfs: an empty tmpfs;
//   - bind: a read-only view of the context or of a stage (from=);
//   - secret: the file Options.Secrets names for the id, read-only at
//     /run/secrets/<id> unless target= says otherwise.
//
// release undoes the stage mounts bind needed.
func (b *builder) runMounts(ctx context.Context, c *instructions.RunCommand) (ms []mount.Mount, release func(), err error) {
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	defer func() {
		if err != nil {
			releaseAll()
		}
	}()
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			if b.opts.CacheMountRoot == "" {
				return nil, nil, fmt.Errorf("RUN --mount=type=cache: this engine has no cache mount directory")
			}
			id := m.CacheID
			if id == "" {
				id = target
			}
			sum := sha256.Sum256([]byte(id))
			dir := filepath.Join(b.opts.CacheMountRoot, hex.EncodeToString(sum[:16]))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, nil, fmt.Errorf("RUN --mount=type=cache,id=%s: %w", id, err)
			}
			ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: dir, Target: target})
		case instructions.MountTypeTmpfs:
			ms = append(ms, mount.Mount{Type: mount.TypeTmpfs, Target: target,
				TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.SizeLimit}})
		case instructions.MountTypeBind:
			root := b.opts.ContextDir
			if m.From != "" {
				r, _, rel, err := b.sourceRoot(ctx, m.From)
				if err != nil {
					return nil, nil, fmt.Errorf("RUN --mount=type=bind,from=%s: %w", m.From, err)
				}
				releases = append(releases, rel)
				root = r
			}
			src, err := securejoin.SecureJoin(root, m.Source)
			if err != nil {
				return nil, nil, fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, err)
			}
			if _, err := os.Stat(src); err != nil {
				return nil, nil, fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, err)
			}
			// Writes would reach the context or the stage: always read-only.
			ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: src, Target: target, ReadOnly: true})
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" {
				id = path.Base(target)
			}
			if target == "" {
				target = "/run/secrets/" + id
			}
			src, ok := b.opts.Secrets[id]
			if !ok {
				if m.Required {
					return nil, nil, fmt.Errorf("RUN --mount=type=secret: secret %s not provided (berth build --secret id=%s,src=FILE)", id, id)
				}
				continue
			}
			if m.Env != nil {
				return nil, nil, fmt.Errorf("RUN --mount=type=secret,env=%s is not supported by this builder", *m.Env)
			}
			ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: src, Target: target, ReadOnly: true})
		default:
			return nil, nil, fmt.Errorf("RUN --mount=type=%s is not supported by this builder", m.Type)
		}
	}
	return ms, releaseAll, nil
}

// mountFlagsOnly reports whether every flag of the RUN is --mount.
func mountFlagsOnly(c *instructions.RunCommand) (string, bool) {
	for _, f := range c.FlagsUsed {
		if !strings.EqualFold(f, "mount") {
			return f, false
		}
	}
	return "", true
}
