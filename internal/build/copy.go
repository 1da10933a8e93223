package build

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"berth/internal/archive"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

type copySpec struct {
	srcs         []string
	dest         string
	from         string
	chown, chmod string
	text         string
	add          bool
	inline       []instructions.SourceContent
	checksum     string   // ADD --checksum of a URL
	keepGitDir   bool     // ADD --keep-git-dir
	parents      bool     // COPY --parents
	excludes     []string // --exclude patterns
	link         bool     // --link
	// unpack is ADD --unpack: nil unpacks local archives and not
	// downloads (docker's rule); true or false decides for both.
	unpack *bool
}

// entry is one member of a layer being made.
type entry struct {
	hdr  *tar.Header
	src  string // host file with the content of a regular file
	data []byte // content read from an archive (ADD of a tar)
}

// layerSet collects entries by path; later writes win, like files copied
// over each other.
type layerSet map[string]*entry

// withRoot mounts image id (nothing for scratch) for the length of fn.
func (b *builder) withRoot(ctx context.Context, id string, fn func(root string) error) error {
	if id == "" {
		return fn("")
	}
	root, release, err := b.be.Mount(ctx, id)
	if err != nil {
		return err
	}
	defer release()
	return fn(root)
}

// statIn stats p inside root, following symlinks within it; a missing
// root (scratch) has nothing.
func statIn(root, p string) (fs.FileInfo, error) {
	if root == "" {
		return nil, fs.ErrNotExist
	}
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return nil, err
	}
	return os.Stat(full)
}

// addParents adds the ancestors of p that the layer needs: a missing one
// as a fresh directory, an existing one with its current metadata, so the
// layer does not change it.
func (b *builder) addParents(set layerSet, root, p string) {
	for dir := path.Dir(p); dir != "/" && dir != "."; dir = path.Dir(dir) {
		name := strings.TrimPrefix(dir, "/") + "/"
		if _, ok := set[name]; ok {
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: b.clamp(time.Unix(0, 0))}
		if fi, err := statIn(root, dir); err == nil && fi.IsDir() {
			if h, err := tar.FileInfoHeader(fi, ""); err == nil {
				hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime = h.Mode, h.Uid, h.Gid, b.clamp(h.ModTime)
			}
		}
		set[name] = &entry{hdr: hdr}
	}
}

func (b *builder) clamp(t time.Time) time.Time {
	if !b.created.IsZero() && (t.After(b.created) || t.Unix() == 0) {
		return b.created
	}
	return t.Truncate(time.Second)
}

// workdir sets the working directory and creates it when the image lacks it.
func (b *builder) workdir(ctx context.Context, st *stageState, cfg dockerspec.DockerOCIImageConfig, text string) error {
	key := b.key(st, text)
	if b.cached(st, key) {
		return nil
	}
	set := layerSet{}
	err := b.withRoot(ctx, st.img.ID, func(root string) error {
		if fi, err := statIn(root, cfg.WorkingDir); err == nil && fi.IsDir() {
			return nil
		}
		if cfg.WorkingDir == "/" {
			return nil
		}
		b.addParents(set, root, cfg.WorkingDir)
		name := strings.TrimPrefix(cfg.WorkingDir, "/") + "/"
		set[name] = &entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: b.clamp(time.Unix(0, 0))}}
		return nil
	})
	if err != nil {
		return err
	}
	if len(set) == 0 {
		return b.commitConfig(ctx, st, cfg, text, true)
	}
	return b.applySet(ctx, st, cfg, set, key, "/bin/sh -c #(nop) "+text)
}

// applySet writes the layer (sorted, so the same files give the same
// layer) and makes the step's image from it.
func (b *builder) applySet(ctx context.Context, st *stageState, cfg dockerspec.DockerOCIImageConfig, set layerSet, key, createdBy string) error {
	f, err := b.writeLayer(set)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	id, err := b.be.Apply(ctx, b.newStep(st, cfg, createdBy), f)
	if err != nil {
		return err
	}
	b.remember(st, key, id, cfg)
	return nil
}

// writeLayer writes set as a tar to a temporary file, rewound.
func (b *builder) writeLayer(set layerSet) (*os.File, error) {
	f, err := os.CreateTemp("", "berth-build-layer-")
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(f)
	tw := tar.NewWriter(bw)
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	}) {
		e := set[name]
		e.hdr.Format = tar.FormatPAX
		e.hdr.AccessTime, e.hdr.ChangeTime = time.Time{}, time.Time{}
		e.hdr.Uname, e.hdr.Gname = "", ""
		if err := tw.WriteHeader(e.hdr); err != nil {
			return fail(fmt.Errorf("write layer entry %s: %w", name, err))
		}
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		if e.data != nil {
			if _, err := tw.Write(e.data); err != nil {
				return fail(err)
			}
			continue
		}
		src, err := os.Open(e.src)
		if err != nil {
			return fail(err)
		}
		_, err = io.CopyN(tw, src, e.hdr.Size)
		src.Close()
		if err != nil {
			return fail(fmt.Errorf("copy %s: %w", e.src, err))
		}
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, nil
}

// copy runs COPY and ADD.
func (b *builder) copy(ctx context.Context, st *stageState, c copySpec) error {
	var mode *fs.FileMode
	if c.chmod != "" {
		m, err := strconv.ParseUint(c.chmod, 8, 32)
		if err != nil {
			return fmt.Errorf("invalid --chmod %q: %w", c.chmod, err)
		}
		fm := fs.FileMode(m)
		mode = &fm
	}
	dest := c.dest
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.img.Config.WorkingDir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(c.dest, "/")]
	}
	srcRoot, ignore, release, err := b.sourceRoot(ctx, c.from)
	if err != nil {
		return err
	}
	defer release()
	exclude, err := excludeMatcher(c.excludes)
	if err != nil {
		return err
	}
	if len(c.excludes) > 0 {
		base := ignore
		ignore = func(rel string) bool { return base(rel) || exclude(rel, "") }
	}
	if c.parents {
		dest = strings.TrimSuffix(dest, "/") + "/" // --parents always copies into a directory
	}
	// --link: the layer must not depend on the image below it, so the
	// destination is judged as in an empty image.
	layerRoot := func(root string) string {
		if c.link {
			return ""
		}
		return root
	}

	set := layerSet{}
	var cleanups []func()
	defer func() {
		for _, c := range cleanups {
			c()
		}
	}()
	err = b.withRoot(ctx, st.img.ID, func(root string) error {
		owner, err := parseChown(root, c.chown)
		if err != nil {
			return err
		}
		var srcs, remotes []string
		keep := map[string]string{} // --parents: source -> path kept under dest
		for _, s := range c.srcs {
			if isRemote(s) && c.from == "" {
				if !c.add {
					return fmt.Errorf("COPY %s: source can't be a URL for COPY (use ADD)", s)
				}
				remotes = append(remotes, s)
				continue
			}
			if c.checksum != "" {
				return fmt.Errorf("ADD --checksum: %s is not an http(s) URL", s)
			}
			m, err := matchSources(srcRoot, s, ignore)
			var missing *missingSourceError
			if errors.As(err, &missing) && c.from != "" {
				missing.from = c.from
				_, missing.stage = b.stages[strings.ToLower(c.from)]
			}
			if err != nil {
				return err
			}
			if c.parents {
				for _, r := range m {
					keep[r] = parentsPath(s, r)
				}
			}
			srcs = append(srcs, m...)
		}
		// Docker requires the slash even when the destination already
		// exists as a directory.
		if len(srcs)+len(c.inline)+len(remotes) > 1 && !strings.HasSuffix(dest, "/") {
			return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /", strings.Fields(c.text)[0])
		}
		destDir := strings.HasSuffix(dest, "/")
		if !destDir {
			if fi, err := statIn(layerRoot(root), dest); err == nil && fi.IsDir() {
				destDir = true
			}
		}
		cleanDest := path.Clean(dest)
		b.addInline(set, c.inline, cleanDest, destDir, owner, mode)
		for _, u := range remotes {
			var done func()
			var err error
			if isGit(u) {
				done, err = b.addGit(ctx, set, u, cleanDest, owner, mode, c.keepGitDir)
			} else {
				done, err = b.addURL(ctx, set, u, cleanDest, destDir, owner, mode, c.checksum, c.unpack != nil && *c.unpack)
			}
			if err != nil {
				return err
			}
			cleanups = append(cleanups, done)
		}
		for _, rel := range srcs {
			full := filepath.Join(srcRoot, rel)
			fi, err := os.Lstat(full)
			if err != nil {
				return err
			}
			treeDest := cleanDest
			if c.parents {
				treeDest = path.Join(cleanDest, keep[rel])
			}
			switch {
			case fi.IsDir():
				treeIgnore := ignore
				if len(c.excludes) > 0 {
					treeIgnore = func(p string) bool { return ignore(p) || exclude(p, rel) }
				}
				if err := b.addTree(set, full, rel, treeDest, treeIgnore, owner, mode); err != nil {
					return err
				}
				dirMode := mode
				if c.link {
					dirMode = nil // a fresh directory, as BuildKit's linked layer has
				}
				destDirMeta(set, layerRoot(root), treeDest, dirMode)
			case c.add && (c.unpack == nil || *c.unpack) && isArchive(full):
				if err := b.addArchive(set, full, cleanDest, owner); err != nil {
					return err
				}
			default:
				target := cleanDest
				switch {
				case c.parents:
					target = treeDest
				case destDir:
					target = path.Join(cleanDest, path.Base(rel))
				}
				if err := b.addFile(set, full, fi, target, owner, mode); err != nil {
					return err
				}
			}
		}
		for name := range set {
			b.addParents(set, layerRoot(root), "/"+strings.TrimSuffix(name, "/"))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The cache key needs only the content hashes; the layer tar is
	// written on a miss alone, so a cached COPY of a big context is cheap.
	sum, files, err := setInputs(set)
	if err != nil {
		return err
	}
	b.pendingFiles = files // recorded on every build, for the next --explain
	key := b.key(st, c.text, sum, b.created.String())
	if b.cached(st, key) {
		return nil
	}
	f, err := b.writeLayer(set)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cfg := cloneConfig(st.img.Config)
	kind := "COPY"
	if c.add {
		kind = "ADD"
	}
	id, err := b.be.Apply(ctx, b.newStep(st, cfg, fmt.Sprintf("/bin/sh -c #(nop) %s %s in %s ", kind, sum[:12], dest)), f)
	if err != nil {
		return err
	}
	b.remember(st, key, id, cfg)
	return nil
}

// sourceRoot is where COPY reads: the context, or the root of an earlier
// stage or an image for --from.
func (b *builder) sourceRoot(ctx context.Context, from string) (string, func(string) bool, func(), error) {
	if from == "" {
		ignore := b.opts.Ignore
		if ignore == nil {
			ignore = func(string) bool { return false }
		}
		return b.opts.ContextDir, ignore, func() {}, nil
	}
	ref := from
	if id, ok := b.stages[strings.ToLower(from)]; ok {
		ref = id
	}
	img, err := b.be.ResolveImage(ctx, ref)
	if err != nil {
		return "", nil, nil, fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	root, release, err := b.be.Mount(ctx, img.ID)
	if err != nil {
		return "", nil, nil, err
	}
	return root, func(string) bool { return false }, release, nil
}

// matchSources expands a source (wildcards allowed) to paths relative to
// root that exist and are not ignored.
func matchSources(root, src string, ignore func(string) bool) ([]string, error) {
	rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
	if rel == "" {
		rel = "."
	}
	if !strings.ContainsAny(rel, "*?[") {
		if ignore(rel) && rel != "." {
			return nil, &missingSourceError{src: src}
		}
		full, err := securejoin.SecureJoin(root, rel)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(full); err != nil {
			return nil, &missingSourceError{src: src}
		}
		r, _ := filepath.Rel(root, full)
		return []string{filepath.ToSlash(r)}, nil
	}
	matches, err := filepath.Glob(filepath.Join(root, rel))
	if err != nil {
		return nil, fmt.Errorf("COPY source %q: %w", src, err)
	}
	var out []string
	for _, m := range matches {
		r, err := filepath.Rel(root, m)
		if err != nil || strings.HasPrefix(r, "..") {
			continue
		}
		r = filepath.ToSlash(r)
		if !ignore(r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("COPY failed: no source files were specified")
	}
	slices.Sort(out)
	return out, nil
}

// addTree copies a directory's contents (not the directory itself) to dest.
func (b *builder) addTree(set layerSet, full, rel, dest string, ignore func(string) bool, owner *[2]int, mode *fs.FileMode) error {
	return filepath.WalkDir(full, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(full, p)
		sub = filepath.ToSlash(sub)
		if sub != "." && ignore(path.Join(rel, sub)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return b.addFile(set, p, fi, path.Join(dest, sub), owner, mode)
	})
}

// destDirMeta gives the destination of a directory source docker's
// metadata rather than the source directory's: an existing directory is
// left as it is (COPY d /tmp/ keeps /tmp 1777), a new one is 0755 (owned
// per --chown, --chmod applies).
func destDirMeta(set layerSet, root, dest string, mode *fs.FileMode) {
	name := strings.TrimPrefix(dest, "/") + "/"
	e, ok := set[name]
	if !ok || name == "/" {
		return
	}
	if fi, err := statIn(root, dest); err == nil && fi.IsDir() {
		delete(set, name) // addParents puts it back with its current metadata
		return
	}
	if mode == nil {
		e.hdr.Mode = 0o755
	}
}

// addFile adds one file, directory or symlink at target.
func (b *builder) addFile(set layerSet, full string, fi fs.FileInfo, target string, owner *[2]int, mode *fs.FileMode) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(full)
		if err != nil {
			return err
		}
		link = l
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("copy %s: %w", full, err)
	}
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeSymlink {
		return nil // devices, sockets and fifos are not copied
	}
	name := strings.TrimPrefix(path.Clean(target), "/")
	if name == "" {
		return nil // the root itself
	}
	if hdr.Typeflag == tar.TypeDir {
		name += "/"
	}
	hdr.Name = name
	hdr.Uid, hdr.Gid = 0, 0
	if owner != nil {
		hdr.Uid, hdr.Gid = owner[0], owner[1]
	}
	if mode != nil && hdr.Typeflag != tar.TypeSymlink {
		hdr.Mode = int64(*mode)
	}
	hdr.ModTime = b.clamp(hdr.ModTime)
	set[name] = &entry{hdr: hdr, src: full}
	return nil
}

// isArchive reports whether ADD should unpack the local file: a tar,
// plain or gzip/zstd-compressed.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, _, err := archive.Decompress(f)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// addArchive unpacks a local tar into dest, as ADD does.
func (b *builder) addArchive(set layerSet, full, dest string, owner *[2]int) error {
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := archive.Decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("ADD %s: %w", full, err)
		}
		name := strings.TrimPrefix(path.Join(dest, path.Clean("/"+hdr.Name)), "/")
		if name == "" {
			continue
		}
		e := &entry{hdr: hdr}
		switch hdr.Typeflag {
		case tar.TypeDir:
			name += "/"
		case tar.TypeReg:
			if e.data, err = io.ReadAll(io.LimitReader(tr, hdr.Size)); err != nil {
				return err
			}
			if e.data == nil {
				e.data = []byte{}
			}
		case tar.TypeLink:
			hdr.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+hdr.Linkname)), "/")
		}
		hdr.Name = name
		if owner != nil {
			hdr.Uid, hdr.Gid = owner[0], owner[1]
		}
		hdr.ModTime = b.clamp(hdr.ModTime)
		set[name] = e
	}
	return nil
}

// parseChown reads --chown=user[:group]; names are looked up in the
// image's /etc/passwd and /etc/group. A user alone also gives the group,
// numerically, as docker does.
func parseChown(root, s string) (*[2]int, error) {
	if s == "" {
		return nil, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	uid, err := lookupID(root, "/etc/passwd", u)
	if err != nil {
		return nil, fmt.Errorf("--chown=%s: %w", s, err)
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(root, "/etc/group", g); err != nil {
			return nil, fmt.Errorf("--chown=%s: %w", s, err)
		}
	}
	return &[2]int{uid, gid}, nil
}

// lookupID resolves a numeric id or a name in a passwd/group file of root.
func lookupID(root, file, name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	if root != "" {
		if p, err := securejoin.SecureJoin(root, file); err == nil {
			if data, err := os.ReadFile(p); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					f := strings.Split(line, ":")
					if len(f) >= 3 && f[0] == name {
						return strconv.Atoi(f[2])
					}
				}
			}
		}
	}
	return 0, fmt.Errorf("unable to find %s in %s of the image", name, file)
}
