package daemon

// The archive API (docker cp): stat, read and write paths of a container's
// file system, running or not.
//
// Every path is resolved by walking it one component at a time in container
// terms: a symlink's target is read and resolved again from the container's
// root (absolute targets) or from the link's directory, and ".." never climbs
// above "/". Each container path is mapped to a host path only at the end,
// through the container's bind mounts (its /etc/hosts, hostname and
// resolv.conf, and -v binds) or else its root, so no symlink can reach the
// host's file system (CVE-2018-15664). A running container is frozen for the
// duration of a copy so that it can't swap a checked directory for a
// symlink between our check and our use of it; archive.Apply, which the
// extraction goes through, also refuses to write through symlinks.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"berth/internal/api"
	"berth/internal/archive"
	"berth/internal/errdefs"
)

// fsMount is a bind mount over a container's root, in host terms.
type fsMount struct {
	dest   string // clean absolute container path
	source string // host path (file or directory)
	rw     bool
}

// containerFS is a container's file system as cp sees it.
type containerFS struct {
	root    string
	mounts  []fsMount // longest destination first
	closers []func()
}

func (fs *containerFS) close() {
	for i := len(fs.closers) - 1; i >= 0; i-- {
		fs.closers[i]()
	}
}

// openFSOf is openFS of the container name refers to.
func (d *Daemon) openFSOf(name string) (*containerFS, error) {
	c, err := d.Get(name)
	if err != nil {
		return nil, err
	}
	return d.openFS(c)
}

// openFS gives access to c's file system: its mounted root, or a temporary
// mount of it when the container doesn't run (as ContainerExport does). A
// running container is frozen until close.
func (d *Daemon) openFS(c *Container) (*containerFS, error) {
	fs := &containerFS{root: filepath.Join(c.BundleDir, "rootfs")}
	c.mu.Lock()
	running := c.State.Status == container.StateRunning
	hc := c.HostConfig
	c.mu.Unlock()
	if !running {
		// a container that just exited may still be unmounting its root
		d.waitCleanup(c)
	}
	if !isMounted(fs.root) {
		img, err := d.images.Resolve(c.ImageID.String())
		if err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(d.cfg.ExecRoot, "rootfs-")
		if err != nil {
			return nil, fmt.Errorf("mount the root of %s: %w", c.ID[:12], err)
		}
		if err := d.images.MountRootfs(c.ID, img, tmp); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("mount the root of %s: %w", c.ID[:12], err)
		}
		fs.root = tmp
		fs.closers = append(fs.closers, func() { d.images.UnmountRootfs(tmp); os.Remove(tmp) })
	} else if running {
		if err := d.rt.Pause(c.ID); err == nil {
			fs.closers = append(fs.closers, func() { d.rt.Resume(c.ID) })
		}
	}
	dir := d.containerDir(c.ID)
	for dest, file := range map[string]string{"/etc/hostname": "hostname", "/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf"} {
		if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
			fs.mounts = append(fs.mounts, fsMount{dest: dest, source: filepath.Join(dir, file), rw: true})
		}
	}
	if hc != nil {
		for _, mp := range mountPoints(hc) {
			if mp.Type != "bind" || !filepath.IsAbs(mp.Source) {
				continue
			}
			fs.mounts = append(fs.mounts, fsMount{dest: path.Clean("/" + mp.Destination), source: filepath.Clean(mp.Source), rw: mp.RW})
		}
	}
	c.mu.Lock()
	for _, vm := range c.Volumes {
		fs.mounts = append(fs.mounts, fsMount{dest: vm.Destination, source: d.volumePath(vm), rw: vm.RW})
	}
	c.mu.Unlock()
	fs.resolveMounts()
	return fs, nil
}

// resolveMounts resolves the mount destinations in the root, as the
// runtime does when it mounts them (an image's /var/run -> /run), and
// orders them longest first.
func (fs *containerFS) resolveMounts() {
	plain := &containerFS{root: fs.root}
	for i := range fs.mounts {
		if r, err := plain.resolve(fs.mounts[i].dest, true); err == nil {
			fs.mounts[i].dest = r
		}
	}
	sort.SliceStable(fs.mounts, func(i, j int) bool { return len(fs.mounts[i].dest) > len(fs.mounts[j].dest) })
}

// mountOf returns the bind mount that holds the container path p, if any.
func (fs *containerFS) mountOf(p string) *fsMount {
	for i := range fs.mounts {
		m := &fs.mounts[i]
		if p == m.dest || strings.HasPrefix(p, m.dest+"/") || m.dest == "/" {
			return m
		}
	}
	return nil
}

// hostPath maps a clean absolute container path to the host. Only clean
// paths come here, so the result stays under the root or a mount source.
func (fs *containerFS) hostPath(p string) string {
	if m := fs.mountOf(p); m != nil {
		return filepath.Join(m.source, strings.TrimPrefix(p, m.dest))
	}
	return filepath.Join(fs.root, p)
}

// resolve follows the symlinks of the container path p inside the
// container and returns the clean container path it names. The last
// component is followed only when followLast is set. Missing components are
// kept as they are.
func (fs *containerFS) resolve(p string, followLast bool) (string, error) {
	parts := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		if len(parts) == 0 && !followLast {
			return next, nil
		}
		fi, err := os.Lstat(fs.hostPath(next))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > 255 {
			return "", errdefs.InvalidParameter(fmt.Errorf("too many levels of symbolic links in %s", p))
		}
		target, err := os.Readlink(fs.hostPath(next))
		if err != nil {
			return "", fmt.Errorf("read symlink %s: %w", next, err)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return cur, nil
}

// pathStat is a resolved path of a copy.
type pathStat struct {
	ctrPath string // clean container path, last symlink not followed
	host    string
	info    os.FileInfo
	stat    container.PathStat
}

// statPath resolves p the way docker does: every component but the last is
// followed; a trailing "/" or "/." makes the last one a directory to enter.
func (d *Daemon) statPath(fs *containerFS, name, p string) (*pathStat, error) {
	if p == "" {
		return nil, errdefs.InvalidParameter(errors.New("path must not be empty"))
	}
	abs := "/" + strings.TrimLeft(p, "/")
	dir, base := path.Split(abs)
	rdir, err := fs.resolve(dir, true)
	if err != nil {
		return nil, err
	}
	cp := path.Join(rdir, base)
	host := fs.hostPath(cp)
	if base == "" || base == "." {
		host = fs.hostPath(rdir)
	}
	fi, err := os.Lstat(host)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, name))
		}
		return nil, errdefs.InvalidParameter(fmt.Errorf("stat %s in container %s: %w", p, name, unwrapPathErr(err)))
	}
	if (strings.HasSuffix(p, "/") || base == ".") && !fi.IsDir() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("stat %s in container %s: not a directory", p, name))
	}
	st := &pathStat{ctrPath: cp, host: host, info: fi}
	st.stat = container.PathStat{Name: path.Base(path.Clean(abs)), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if path.Base(abs) == "." { // "/x/.", "./", "/./": the contents
		st.stat.Name = "."
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if st.stat.LinkTarget, err = fs.resolve(cp, true); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ContainerStatPath answers HEAD /containers/{name}/archive: the stat of
// path inside the container, the last symlink not followed.
func (d *Daemon) ContainerStatPath(ctx context.Context, name, p string) (*container.PathStat, error) {
	fs, err := d.openFSOf(name)
	if err != nil {
		return nil, err
	}
	defer fs.close()
	st, err := d.statPath(fs, name, p)
	if err != nil {
		return nil, err
	}
	return &st.stat, nil
}

// ContainerArchivePath answers GET /containers/{name}/archive: it stats
// path and calls start with the stat before writing the tar of the path to
// w: a file as one entry named by its base name, a directory as itself and
// its contents under its base name.
func (d *Daemon) ContainerArchivePath(ctx context.Context, name, p string, start func(*container.PathStat) error, w io.Writer) error {
	fs, err := d.openFSOf(name)
	if err != nil {
		return err
	}
	defer fs.close()
	st, err := d.statPath(fs, name, p)
	if err != nil {
		return err
	}
	if err := start(&st.stat); err != nil {
		return err
	}
	tw := &treeTar{ctx: ctx, fs: fs, tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
	// As dockerd: the root's entries are "/" and "/x" (moby's
	// TestCopyFromContainer expects them); clients treat them as relative.
	if err := tw.add(st.ctrPath, st.host, st.stat.Name); err != nil {
		return err
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("finish archive of %s: %w", p, err)
	}
	return nil
}

// treeTar writes a container tree to a tar, reading each path through the
// container's mounts.
type treeTar struct {
	ctx   context.Context
	fs    *containerFS
	tw    *tar.Writer
	links map[[2]uint64]string
	n     int
}

// add writes the entry for the container path ctrPath (at host) as name,
// and its children when it is a directory.
func (t *treeTar) add(ctrPath, host, name string) error {
	if t.n++; t.n%256 == 0 {
		if err := t.ctx.Err(); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed meanwhile
		}
		return fmt.Errorf("stat %s: %w", ctrPath, err)
	}
	hdr := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = strings.TrimSuffix(name, "/") + "/"
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(hdr)
			}
			t.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(host)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", ctrPath, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not archived
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return t.copyFile(host, hdr.Size)
	case tar.TypeDir:
		f, err := os.Open(host)
		if err != nil {
			return fmt.Errorf("open %s: %w", ctrPath, err)
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("read directory %s: %w", ctrPath, err)
		}
		sort.Strings(names)
		for _, n := range names {
			child := path.Join(ctrPath, n)
			// name + "/" + n, not path.Join: "." must give "./n", which
			// the client renames as a whole.
			if err := t.add(child, t.fs.hostPath(child), strings.TrimSuffix(name, "/")+"/"+n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *treeTar) copyFile(host string, size int64) error {
	f, err := os.OpenFile(host, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", host, err)
	}
	defer f.Close()
	n, err := io.Copy(t.tw, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("copy %s: %w", host, err)
	}
	// A file that shrank meanwhile is padded to keep the tar well-formed.
	for ; n < size; n++ {
		if _, err := t.tw.Write([]byte{0}); err != nil {
			return err
		}
	}
	return nil
}

// ContainerExtractToDir answers PUT /containers/{name}/archive: it extracts
// the tar read from r into the directory path (symlinks followed inside the
// container), which must exist.
func (d *Daemon) ContainerExtractToDir(ctx context.Context, name, p string, opts api.ExtractOptions, r io.Reader) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.InvalidParameter(errors.New("path must not be empty"))
	}
	fs, err := d.openFS(c)
	if err != nil {
		return err
	}
	defer fs.close()
	ctrPath, err := fs.resolve("/"+strings.TrimLeft(p, "/"), true)
	if err != nil {
		return err
	}
	host := fs.hostPath(ctrPath)
	fi, err := os.Lstat(host)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, name))
		}
		return errdefs.InvalidParameter(fmt.Errorf("stat %s in container %s: %w", p, name, unwrapPathErr(err)))
	}
	if !fi.IsDir() {
		return errdefs.InvalidParameter(errors.New("extraction point is not a directory"))
	}
	if m := fs.mountOf(ctrPath); m != nil {
		if !m.rw {
			return errdefs.Forbidden(fmt.Errorf("mounted volume is marked read-only"))
		}
	} else if c.HostConfig != nil && c.HostConfig.ReadonlyRootfs {
		return errdefs.Forbidden(errors.New("container rootfs is marked read-only"))
	}
	owner := [2]int{-1, -1}
	if opts.CopyUIDGID {
		spec := c.Config.User
		if spec == "" {
			if img, err := d.images.Resolve(c.ImageID.String()); err == nil {
				spec = img.Config.Config.User
			}
		}
		if owner, err = containerUser(fs, spec); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := filterCopyTar(r, pw, host, ctrPath, opts.NoOverwriteDirNonDir, owner)
		pw.CloseWithError(err)
		errc <- err
	}()
	_, err = archive.Apply(ctx, host, pr, archive.ApplyOptions{})
	pr.CloseWithError(errExtractDone)
	// The filter's own error is the cause of Apply's read error; a filter
	// stopped because Apply gave up has nothing to add.
	if ferr := <-errc; ferr != nil && !errors.Is(ferr, errExtractDone) {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("copy into %s of container %s: %w", p, name, err)
	}
	return nil
}

var errExtractDone = errors.New("extraction ended")

// filterCopyTar copies the tar from r to w, checking the dir/non-dir rule
// against what exists under dir, setting the owner when asked, and refusing
// whiteout names, which mean something else to archive.Apply than a file.
func filterCopyTar(r io.Reader, w io.Writer, dir, ctrDir string, noOverwrite bool, owner [2]int) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("read tar: %w", err))
		}
		rel := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if strings.HasPrefix(path.Base(rel), archive.WhiteoutPrefix) {
			return errdefs.InvalidParameter(fmt.Errorf("refusing to copy %q: names starting with %q are reserved", hdr.Name, archive.WhiteoutPrefix))
		}
		if noOverwrite && rel != "." && !strings.HasPrefix(rel, "../") && rel != ".." {
			if fi, err := os.Lstat(filepath.Join(dir, rel)); err == nil {
				isDir := hdr.Typeflag == tar.TypeDir
				if fi.IsDir() && !isDir {
					return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite directory %q with non-directory %q", path.Join(ctrDir, rel), hdr.Name))
				}
				if !fi.IsDir() && isDir {
					return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite non-directory %q with directory %q", path.Join(ctrDir, rel), hdr.Name))
				}
			}
		}
		if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(hdr.Linkname) {
			// As docker: a relative link may not point above the
			// extraction directory.
			if t := path.Join(path.Dir(rel), hdr.Linkname); t == ".." || strings.HasPrefix(t, "../") {
				return errdefs.InvalidParameter(fmt.Errorf("invalid symlink %q -> %q", path.Join(ctrDir, rel), hdr.Linkname))
			}
		}
		if owner[0] >= 0 {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = owner[0], owner[1], "", ""
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// containerUser resolves the container's user ("name", "uid", "uid:gid",
// "7777:", ":7777") to uid and gid with its own /etc/passwd and /etc/group,
// as the process would run: a missing part or an unknown numeric uid's
// group is 0.
func containerUser(fs *containerFS, spec string) ([2]int, error) {
	passwd, _ := fs.resolve("/etc/passwd", true)
	group, _ := fs.resolve("/etc/group", true)
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{}, fs.hostPath(passwd), fs.hostPath(group))
	if err != nil {
		return [2]int{}, errdefs.InvalidParameter(fmt.Errorf("resolve user %q of the container: %w", spec, err))
	}
	return [2]int{eu.Uid, eu.Gid}, nil
}
