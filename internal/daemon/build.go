package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"

	"berth/internal/api"
	"berth/internal/archive"
	"berth/internal/build"
	"berth/internal/errdefs"
	"berth/internal/image"
)

// Build runs the classic builder (internal/build) over the context tar.
// The context is unpacked into a temporary directory under the exec root;
// RUN steps are containers of this daemon, committed and removed.
func (d *Daemon) Build(ctx context.Context, buildContext io.Reader, opts api.BuildOptions, out api.Progress) error {
	auth, err := decodeBuildAuth(opts.RegistryConfig)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(d.cfg.ExecRoot, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The context may come compressed (docker build - < ctx.tar.gz).
	rc, _, err := archive.Decompress(buildContext)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("read build context: %w", err))
	}
	defer rc.Close()
	if _, err := archive.Apply(ctx, dir, rc, archive.ApplyOptions{NoChown: true}); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("read build context: %w", err))
	}
	// berth build --secret: daemon-private files outside the context,
	// bind-mounted read-only into the RUN steps that ask for them.
	secretDir := dir + ".secrets"
	defer os.RemoveAll(secretDir)
	secrets, err := build.WriteSecrets(secretDir, opts.Secrets)
	if err != nil {
		return err
	}
	dfName := opts.Dockerfile
	if dfName == "" {
		dfName = "Dockerfile"
	}
	f, err := os.Open(filepath.Join(dir, filepath.Clean("/"+dfName)))
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("Cannot locate specified Dockerfile: %s", dfName))
	}
	df, err := build.Parse(f)
	f.Close()
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	ignore, err := build.LoadIgnore(dir, dfName)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	// The cache bound is kept after every build, failed ones included.
	defer d.enforceBuildCacheBound(context.WithoutCancel(ctx), d.cfg.BuildCacheMax)
	w := &streamWriter{out: out}
	if opts.Quiet {
		w.quiet = true
	}
	be := &buildBackend{d: d, rm: opts.Remove || opts.ForceRm, network: opts.NetworkMode,
		pull: opts.Pull, auth: auth, progress: out, pulled: map[string]error{}}
	cache := d.buildCache()
	defer func() {
		if err := cache.flush(); err != nil {
			d.log.Warn("build cache: recording the build's steps failed", "err", err)
		}
	}()
	id, err := build.Build(ctx, be, cache, df, build.Options{
		ContextDir: dir, Ignore: ignore, BuildArgs: opts.BuildArgs, Labels: opts.Labels,
		NoCache: opts.NoCache, Target: opts.Target, Out: w,
		CacheMountRoot: d.cacheMountRoot(), Secrets: secrets, Explain: opts.Explain, Parallel: true,
	})
	w.flush()
	if err != nil {
		if loc, ok := build.Location(err); ok && opts.Locate {
			out.WriteMessage(api.JSONMessage{Aux: loc})
		}
		return err
	}
	if err := out.WriteMessage(api.JSONMessage{Aux: map[string]string{"ID": id}}); err != nil {
		return err
	}
	if opts.Quiet {
		return out.WriteMessage(api.JSONMessage{Stream: id + "\n"})
	}
	w.Write([]byte("Successfully built " + strings.TrimPrefix(id, "sha256:")[:12] + "\n"))
	for _, t := range opts.Tags {
		repo, tag := t, ""
		if i := strings.LastIndex(t, ":"); i > strings.LastIndex(t, "/") {
			repo, tag = t[:i], t[i+1:]
		}
		if err := d.ImageTag(ctx, id, repo, tag); err != nil {
			return err
		}
		if tag == "" {
			t += ":latest"
		}
		w.Write([]byte("Successfully tagged " + t + "\n"))
	}
	w.flush()
	return nil
}

// streamWriter turns the builder's text into {"stream":...} messages, a
// line each.
type streamWriter struct {
	mu    sync.Mutex
	out   api.Progress
	buf   []byte
	quiet bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i+1])
		w.buf = w.buf[i+1:]
		if err := w.emit(line); err != nil {
			return 0, err
		}
	}
}

func (w *streamWriter) emit(s string) error {
	if w.quiet {
		return nil
	}
	return w.out.WriteMessage(api.JSONMessage{Stream: s})
}

func (w *streamWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// buildBackend is build.Backend over the daemon.
type buildBackend struct {
	d       *Daemon
	rm      bool
	network string // the RUN containers' network mode; "" the default
	// pull (--pull) pulls every image a FROM or COPY --from names, once
	// per build; without it only the images the store lacks are pulled,
	// as docker's classic builder does. Pull progress goes to progress.
	pull bool
	// auth holds the client's registry credentials (X-Registry-Config).
	auth     buildAuth
	progress api.Progress
	pullMu   sync.Mutex
	pulled   map[string]error
}

func (b *buildBackend) ResolveImage(ctx context.Context, ref string) (build.Image, error) {
	img, err := b.d.images.Resolve(ref)
	byID := err == nil && strings.HasPrefix(img.ID.Encoded(), ref) // a short ID, not a name
	if named := pullable(ref); named != "" && !byID && (b.pull || errdefs.IsNotFound(err)) {
		if perr := b.pullOnce(ctx, named); perr != nil {
			if err == nil {
				// --pull with the registry out of reach: docker fails too.
				return build.Image{}, perr
			}
			if denied := b.auth.denied(named, perr); denied != nil {
				return build.Image{}, denied
			}
			return build.Image{}, fmt.Errorf("%w (and pulling it failed: %v)", err, perr)
		}
		img, err = b.d.images.Resolve(ref)
	}
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: img.ID.String(), Config: img.DockerConfig()}, nil
}

// pullable is ref as a registry reference, or "" when it is an image ID
// (the builder's own step and stage images) or no reference at all.
func pullable(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return ""
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.FamiliarString(reference.TagNameOnly(n))
}

// pullOnce pulls ref at most once per build (parallel stages may share
// a base).
func (b *buildBackend) pullOnce(ctx context.Context, ref string) error {
	b.pullMu.Lock()
	defer b.pullMu.Unlock()
	if err, done := b.pulled[ref]; done {
		return err
	}
	err := b.d.pull(ctx, ref, "", "", b.auth.header(ref), b.progress)
	b.pulled[ref] = err
	return err
}

func (b *buildBackend) parent(id string) (*image.Image, error) {
	if id == "" {
		return nil, nil
	}
	return b.d.images.Resolve(id)
}

func (b *buildBackend) Apply(ctx context.Context, step build.Step, layer io.Reader) (string, error) {
	parent, err := b.parent(step.Parent)
	if err != nil {
		return "", err
	}
	id, err := b.d.images.Derive(ctx, parent, image.DeriveOptions{Layer: layer, Config: step.Config, Created: step.Created, CreatedBy: step.CreatedBy, Author: step.Author})
	return id.String(), err
}

func (b *buildBackend) Run(ctx context.Context, step build.Step, run *container.Config, out io.Writer) (string, error) {
	parent, err := b.parent(step.Parent)
	if err != nil {
		return "", err
	}
	cfg := *run
	cfg.Image = step.Parent
	cfg.Labels = map[string]string{}
	resp, err := b.d.ContainerCreate(ctx, "", &container.CreateRequest{Config: &cfg, HostConfig: &container.HostConfig{Mounts: step.Mounts, NetworkMode: container.NetworkMode(b.network)}})
	if err != nil {
		return "", fmt.Errorf("create the container of RUN: %w", err)
	}
	id := resp.ID
	fmt.Fprintf(out, " ---> Running in %s\n", id[:12])
	defer func() {
		if b.rm {
			b.d.ContainerRemove(context.WithoutCancel(ctx), id, true, true)
			fmt.Fprintf(out, "Removing intermediate container %s\n", id[:12])
		}
	}()
	waitCh, err := b.d.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err != nil {
		return "", err
	}
	if err := b.d.ContainerStart(ctx, id); err != nil {
		return "", fmt.Errorf("start the container of RUN: %w", err)
	}
	var res container.WaitResponse
	select {
	case res = <-waitCh:
	case <-ctx.Done():
		b.d.ContainerKill(context.WithoutCancel(ctx), id, "KILL")
		return "", ctx.Err()
	}
	raw := rawStreams{out}
	b.d.ContainerLogs(ctx, id, api.LogsOptions{Stdout: true, Stderr: true, Tail: -1,
		GetStreams: func(bool) (api.Streams, error) { return api.Streams{Stdout: raw, Stderr: raw}, nil }})
	if res.StatusCode != 0 {
		return "", &build.ExitError{Cmd: run.Cmd, Code: int(res.StatusCode)}
	}
	img, err := b.d.images.Derive(ctx, parent, image.DeriveOptions{ContainerID: id, Config: step.Config, Created: step.Created, CreatedBy: step.CreatedBy, Author: step.Author})
	if err != nil {
		return "", err
	}
	return img.String(), nil
}

type rawStreams struct{ w io.Writer }

func (r rawStreams) Write(p []byte) (int, error) { return r.w.Write(p) }

func (b *buildBackend) Mount(ctx context.Context, id string) (string, func(), error) {
	img, err := b.d.images.Resolve(id)
	if err != nil {
		return "", nil, err
	}
	target, err := os.MkdirTemp(b.d.cfg.ExecRoot, "build-mount-")
	if err != nil {
		return "", nil, err
	}
	// The builder only reads the image: a read-only view needs no
	// read-write layer and no metadata transaction (two syncs each way),
	// which made every cached COPY step cost tens of milliseconds.
	if err := b.d.images.MountView(img, target); err == nil {
		return target, func() {
			b.d.images.UnmountRootfs(target)
			os.Remove(target)
		}, nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	key := "build-mount-" + hex.EncodeToString(rnd[:])
	if err := b.d.images.PrepareRootfs(key, img); err != nil {
		os.Remove(target)
		return "", nil, err
	}
	// Volatile: the read-write layer is thrown away, and a plain overlay's
	// unmount would sync the whole host file system on every COPY step.
	if err := b.d.images.MountRootfsVolatile(key, img, target); err != nil {
		os.Remove(target)
		b.d.images.RemoveRootfs(key)
		return "", nil, fmt.Errorf("mount image %s: %w", id, err)
	}
	return target, func() {
		b.d.images.UnmountRootfs(target)
		os.Remove(target)
		b.d.images.RemoveRootfs(key)
		os.Remove(b.d.containerDir(key)) // the rw layer's parent, empty now
	}, nil
}
