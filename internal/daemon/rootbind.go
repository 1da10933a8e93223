package daemon

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"berth/internal/errdefs"
)

// A bind mount of the daemon's data root (or of a directory inside it, or of
// a parent of it) must receive the mounts the daemon makes there later (the
// containers' root filesystems), or unmounting them would leave copies held
// by the container. As dockerd does, such a bind defaults to "rslave", and
// any propagation other than rslave or rshared is refused.

// bindPropagations are the propagation words of a -v mode.
var bindPropagations = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
}

// overlapsRoot reports whether source is the data root, inside it, or one
// of its parents.
func overlapsRoot(root, source string) bool {
	if !filepath.IsAbs(source) {
		return false
	}
	s, r := filepath.Clean(source), filepath.Clean(root)
	return s == r || strings.HasPrefix(s, r+"/") || strings.HasPrefix(r, s+"/") || s == "/"
}

func rootBindError(root, source, prop string) error {
	return errdefs.InvalidParameter(fmt.Errorf("invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, daemon root: %q, bind mount source: %q, propagation: %q", root, source, prop))
}

// checkRootBinds applies the data-root rule to hc's binds and bind mounts,
// recording the rslave default in hc so that the spec and inspect use it.
func (d *Daemon) checkRootBinds(hc *container.HostConfig) error {
	root := d.cfg.DataRoot
	for i, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || !overlapsRoot(root, parts[0]) {
			continue
		}
		prop := ""
		if len(parts) > 2 {
			for _, o := range strings.Split(parts[2], ",") {
				if bindPropagations[o] {
					prop = o
				}
			}
		}
		switch prop {
		case "rslave", "rshared":
		case "":
			if len(parts) > 2 && parts[2] != "" {
				hc.Binds[i] = b + ",rslave"
			} else if len(parts) == 2 {
				hc.Binds[i] = b + ":rslave"
			} else {
				hc.Binds[i] = b + "rslave"
			}
		default:
			return rootBindError(root, parts[0], prop)
		}
	}
	for i := range hc.Mounts {
		m := &hc.Mounts[i]
		if m.Type != mount.TypeBind || !overlapsRoot(root, m.Source) {
			continue
		}
		prop := mount.Propagation("")
		if m.BindOptions != nil {
			prop = m.BindOptions.Propagation
		}
		switch prop {
		case mount.PropagationRSlave, mount.PropagationRShared:
		case "":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.PropagationRSlave
		default:
			return rootBindError(root, m.Source, string(prop))
		}
	}
	return nil
}
