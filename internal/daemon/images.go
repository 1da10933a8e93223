package daemon

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/image"
)

func (d *Daemon) containersUsing(id string) []*Container {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*Container
	for _, c := range d.containers {
		if c.ImageID.String() == id {
			out = append(out, c)
		}
	}
	return out
}

func repoTags(img *image.Image) []string {
	if img.RepoTags == nil {
		return []string{}
	}
	return img.RepoTags
}

func repoDigests(img *image.Image) []string {
	if img.RepoDigests == nil {
		return []string{}
	}
	return img.RepoDigests
}

// ImageList serves `docker images`.
func (d *Daemon) ImageList(ctx context.Context, all bool, f api.Filters) ([]imagetypes.Summary, error) {
	imgs, err := d.images.List()
	if err != nil {
		return nil, err
	}
	out := []imagetypes.Summary{}
	for _, img := range imgs {
		if !matchImage(img, f) {
			continue
		}
		out = append(out, imagetypes.Summary{
			ID: img.ID.String(), RepoTags: repoTags(img), RepoDigests: repoDigests(img),
			Created: imgCreated(img).Unix(), Size: img.Size, Labels: img.Config.Config.Labels,
			Containers: int64(len(d.containersUsing(img.ID.String()))), SharedSize: -1,
		})
		if out[len(out)-1].Labels == nil {
			out[len(out)-1].Labels = map[string]string{}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

func matchImage(img *image.Image, f api.Filters) bool {
	if set, ok := f["dangling"]; ok {
		dangling := len(img.RepoTags) == 0
		if set["true"] && !dangling || set["false"] && dangling {
			return false
		}
	}
	if set, ok := f["reference"]; ok && len(set) > 0 {
		hit := false
		for pattern := range set {
			for _, t := range img.RepoTags {
				if matchRef(pattern, t) {
					hit = true
				}
			}
		}
		if !hit {
			return false
		}
	}
	for l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := img.Config.Config.Labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func matchRef(pattern, tag string) bool {
	if ok, _ := reference.FamiliarMatch(pattern, mustParse(tag)); ok {
		return true
	}
	repo, _, _ := strings.Cut(tag, ":")
	return pattern == repo || pattern == tag
}

func mustParse(s string) reference.Reference {
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil
	}
	return r
}

// ImageInspect serves `docker image inspect`.
func (d *Daemon) ImageInspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error) {
	img, err := d.images.Resolve(name)
	if err != nil {
		return nil, err
	}
	cfg := img.DockerConfig() // Healthcheck, OnBuild and Shell too
	layers := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		layers[i] = l.DiffID.String()
	}
	created := ""
	if !imgCreated(img).IsZero() {
		created = imgCreated(img).UTC().Format(time.RFC3339Nano)
	}
	return &imagetypes.InspectResponse{
		ID: img.ID.String(), RepoTags: repoTags(img), RepoDigests: repoDigests(img),
		Created: created, Author: img.Config.Author, Config: &cfg,
		Architecture: img.Config.Architecture, Variant: img.Config.Variant, Os: img.Config.OS,
		Size: img.Size, GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		RootFS: imagetypes.RootFS{Type: "layers", Layers: layers},
	}, nil
}

// ImageHistory serves `docker history`, newest first.
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := d.images.Resolve(name)
	if err != nil {
		return nil, err
	}
	var out []imagetypes.HistoryResponseItem
	layer := 0
	for _, h := range img.Config.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(img.Layers) {
			item.Size = img.Layers[layer].Size
			layer++
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		for _, l := range img.Layers {
			out = append(out, imagetypes.HistoryResponseItem{ID: "<missing>", Size: l.Size, Tags: []string{}, Created: imgCreated(img).Unix()})
		}
	}
	// reverse: newest first; the newest carries the image ID and tags
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = repoTags(img)
	}
	return out, nil
}

// ImageTag tags source as repo:tag.
func (d *Daemon) ImageTag(ctx context.Context, source, repo, tag string) error {
	img, err := d.images.Resolve(source)
	if err != nil {
		return err
	}
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	if err := d.images.Tag(img.ID, ref); err != nil {
		return err
	}
	d.emitImage(img.ID.String(), ref, events.ActionTag)
	return nil
}

// ImageDelete untags or deletes an image with docker's rules.
func (d *Daemon) ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	img, err := d.images.Resolve(name)
	if err != nil {
		return nil, err
	}
	id := img.ID.String()
	users := d.containersUsing(id)
	byID := strings.HasPrefix(id, name) || strings.HasPrefix(id, "sha256:"+name) || strings.HasPrefix(name, "sha256:")
	var out []imagetypes.DeleteResponse
	if !byID {
		// by reference: untag; delete only when it was the last tag and no container uses it
		ref := familiar(name)
		if len(img.RepoTags) > 1 || len(users) > 0 {
			if len(img.RepoTags) <= 1 && len(users) > 0 && !force {
				return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, users[0].ID[:12], img.ID.Encoded()[:12]))
			}
			if _, err := d.images.Untag(ref); err != nil {
				return nil, err
			}
			d.emitImage(id, ref, events.ActionUnTag)
			return []imagetypes.DeleteResponse{{Untagged: ref}}, nil
		}
	} else {
		if len(users) > 0 && !force {
			state := "stopped"
			for _, c := range users {
				c.mu.Lock()
				if c.State.Running() {
					state = "running"
				}
				c.mu.Unlock()
			}
			return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by %s container %s", img.ID.Encoded()[:12], state, users[0].ID[:12]))
		}
		if len(img.RepoTags) > 1 && !force {
			return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", img.ID.Encoded()[:12]))
		}
		if len(users) > 0 {
			return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", img.ID.Encoded()[:12], users[0].ID[:12]))
		}
	}
	for _, t := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
		if _, err := d.images.Untag(t); err == nil {
			out = append(out, imagetypes.DeleteResponse{Untagged: t})
			d.emitImage(id, t, events.ActionUnTag)
		}
	}
	if err := d.images.Delete(img.ID); err != nil {
		return out, err
	}
	out = append(out, imagetypes.DeleteResponse{Deleted: id})
	d.emitImage(id, id, events.ActionDelete)
	return out, nil
}

func familiar(name string) string {
	r, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(reference.TagNameOnly(r))
}

type progressLines struct{ out api.Progress }

func (p progressLines) line(s string) {
	if p.out != nil {
		p.out.WriteMessage(api.JSONMessage{Stream: s + "\n"})
	}
}

// ImageLoad serves `docker load` (docker-archive or OCI layout).
func (d *Daemon) ImageLoad(ctx context.Context, r io.Reader, quiet bool, out api.Progress) error {
	names, err := d.images.Load(ctx, r, progressLines{out}.line)
	if err != nil {
		return err
	}
	for _, n := range names {
		d.emitImage(n, n, events.ActionLoad)
	}
	return nil
}

// ImageSave serves `docker save`.
func (d *Daemon) ImageSave(ctx context.Context, names []string, w io.Writer) error {
	return d.images.Save(ctx, w, names)
}

// ImageImport serves `docker import`.
func (d *Daemon) ImageImport(ctx context.Context, r io.Reader, repo, tag, message string, changes []string, out api.Progress) error {
	ref := repo
	if repo != "" && tag != "" {
		ref = repo + ":" + tag
	}
	id, err := d.images.Import(ctx, r, ref, changes, message)
	if err != nil {
		return err
	}
	d.emitImage(id.String(), ref, events.ActionImport)
	if out != nil {
		out.WriteMessage(api.JSONMessage{Status: id.String()})
	}
	return nil
}

// ImagePrune removes dangling (or, with dangling=false, all unused) images.
func (d *Daemon) ImagePrune(ctx context.Context, f api.Filters) (*imagetypes.PruneReport, error) {
	danglingOnly := !f["dangling"]["false"]
	imgs, err := d.images.List()
	if err != nil {
		return nil, err
	}
	rep := &imagetypes.PruneReport{}
	before, _ := d.images.Usage()
	for _, img := range imgs {
		if danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		if len(d.containersUsing(img.ID.String())) > 0 {
			continue
		}
		if !matchImage(img, api.Filters{"label": f["label"]}) {
			continue
		}
		resp, err := d.ImageDelete(ctx, img.ID.String(), true, false)
		if err != nil {
			continue
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, resp...)
	}
	after, _ := d.images.Usage()
	if before.LayersSize > after.LayersSize {
		rep.SpaceReclaimed = uint64(before.LayersSize - after.LayersSize)
	}
	return rep, nil
}

// ImagePull pulls ref (with tag: a tag or a digest) from its registry
// into the store, reporting docker's progress messages (see pull.go).
func (d *Daemon) ImagePull(ctx context.Context, ref, tag, platform, auth string, out api.Progress) error {
	return d.pull(ctx, ref, tag, platform, auth, out)
}

func imgCreated(img *image.Image) time.Time {
	if img.Config.Created == nil {
		return time.Time{}
	}
	return *img.Config.Created
}
