// Package archive reads and writes the tar streams of image layers.
//
// Apply extracts a layer into a directory, the "diff" of an overlay
// snapshot: it refuses anything that would land outside that directory
// (absolute names, "..", writing through a symlink, hardlinks to outside),
// refuses device nodes unless allowed, and turns the OCI/Docker whiteout
// files into the form overlayfs understands: ".wh.<name>" becomes a 0/0
// character device <name>, and ".wh..wh..opq" sets trusted.overlay.opaque=y
// on its directory.
//
// WriteTree does the reverse for a directory (a container's upper dir, or a
// whole root filesystem), deterministically: the same tree gives the same
// bytes, so the same diff gives the same DiffID.
package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"berth/internal/errdefs"

	"golang.org/x/sys/unix"
)

// Whiteout names of the OCI image spec (and AUFS before it).
const (
	WhiteoutPrefix     = ".wh."
	WhiteoutMetaPrefix = ".wh..wh."
	WhiteoutOpaque     = ".wh..wh..opq"
)

// OverlayOpaqueXattr marks an overlayfs directory whose lower contents are hidden.
const OverlayOpaqueXattr = "trusted.overlay.opaque"

const maxPath = 4096

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// AllowDevices lets character and block device nodes through; otherwise
	// a layer holding one is refused. FIFOs are always allowed.
	AllowDevices bool
	// NoChown keeps the extracting user as owner (for tests without root).
	NoChown bool
}

// Apply extracts the layer tar read from r into dir, which must exist. It
// returns the bytes of regular file content written (hardlinks counted once),
// the size docker reports for a layer. On error dir holds a partial tree: the
// caller removes it.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	a := &applier{root: filepath.Clean(dir), opts: opts, dirs: map[string]bool{".": true}, buf: make([]byte, 128<<10)}
	a.src = &sourceReader{r: r}
	tr := tar.NewReader(a.src)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return a.size, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, a.readError("read layer tar", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, err
		}
	}
	// Directory times last: creating children touched them.
	for i := len(a.dirTimes) - 1; i >= 0; i-- {
		dt := a.dirTimes[i]
		if err := setTimes(dt.path, dt.hdr); err != nil {
			return a.size, err
		}
	}
	return a.size, nil
}

type dirTime struct {
	path string
	hdr  *tar.Header
}

type applier struct {
	root     string
	opts     ApplyOptions
	dirs     map[string]bool // relative paths known to be real directories
	dirTimes []dirTime
	size     int64
	buf      []byte
	src      *sourceReader // the layer stream, for classifying errors
}

func invalid(name, format string, args ...any) error {
	return errdefs.InvalidParameter(fmt.Errorf("layer entry %q: %s", name, fmt.Sprintf(format, args...)))
}

// cleanName turns a tar entry name into a clean path relative to the root,
// refusing names that leave it.
func cleanName(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", invalid(name, "empty name or NUL byte")
	}
	if len(name) > maxPath {
		return "", invalid(name[:64]+"...", "name longer than %d bytes", maxPath)
	}
	if strings.HasPrefix(name, "/") {
		return "", invalid(name, "absolute path")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", invalid(name, "path leaves the root")
	}
	return c, nil
}

func (a *applier) full(rel string) string {
	if rel == "." {
		return a.root
	}
	return a.root + "/" + rel
}

// parentDir makes sure every component of rel is a real directory inside the
// root, creating missing ones (0755, as docker does) when create is set. It
// never follows a symlink: a layer that puts a symlink where it later writes
// through is refused.
func (a *applier) parentDir(rel string, create bool) error {
	if a.dirs[rel] {
		return nil
	}
	if err := a.parentDir(path.Dir(rel), create); err != nil {
		return err
	}
	p := a.full(rel)
	var st unix.Stat_t
	err := unix.Lstat(p, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
	case err == nil:
		return invalid(rel, "a parent is not a directory (symlink or file): refusing to write through it")
	case errors.Is(err, unix.ENOENT) && create:
		if err := unix.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", rel, err)
		}
	default:
		return fmt.Errorf("stat %s: %w", rel, err)
	}
	a.dirs[rel] = true
	return nil
}

// clear removes whatever exists at rel, except a directory when keepDir is
// set. It reports whether a directory was kept.
func (a *applier) clear(rel string, keepDir bool) (bool, error) {
	p := a.full(rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		if err := os.RemoveAll(p); err != nil {
			return false, fmt.Errorf("replace directory %s: %w", rel, err)
		}
		for d := range a.dirs {
			if d == rel || strings.HasPrefix(d, rel+"/") {
				delete(a.dirs, d)
			}
		}
		return false, nil
	}
	if err := unix.Unlink(p); err != nil {
		return false, fmt.Errorf("replace %s: %w", rel, err)
	}
	return false, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	parent := path.Dir(rel)
	if rel != "." {
		if err := a.parentDir(parent, true); err != nil {
			return fmt.Errorf("%w (writing %q)", err, hdr.Name)
		}
	}
	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(rel, parent, base)
	}
	p := a.full(rel)
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return invalid(hdr.Name, "the root must be a directory")
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		kept, err := a.clear(rel, true)
		if err != nil {
			return err
		}
		if !kept {
			if err := unix.Mkdir(p, 0o700); err != nil {
				return fmt.Errorf("create directory %s: %w", rel, err)
			}
		}
		a.dirs[rel] = true
	case tar.TypeReg, tar.TypeRegA:
		if hdr.Size < 0 {
			return invalid(hdr.Name, "negative size")
		}
		if isSparse(hdr) {
			// Refused: a small sparse entry can claim terabytes of holes.
			return invalid(hdr.Name, "sparse files are not supported")
		}
		if _, err := a.clear(rel, false); err != nil {
			return err
		}
		if err := a.writeFile(p, hdr, r); err != nil {
			return err
		}
		return nil // owner, mode and times set on the open file
	case tar.TypeGNUSparse:
		return invalid(hdr.Name, "sparse files are not supported")
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 || len(hdr.Linkname) > maxPath {
			return invalid(hdr.Name, "bad symlink target")
		}
		if _, err := a.clear(rel, false); err != nil {
			return err
		}
		if err := unix.Symlink(hdr.Linkname, p); err != nil {
			return fmt.Errorf("create symlink %s: %w", rel, err)
		}
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return invalid(hdr.Name, "hardlink target %q leaves the root", hdr.Linkname)
		}
		if err := a.parentDir(path.Dir(target), false); err != nil {
			return invalid(hdr.Name, "hardlink target %q: %v", hdr.Linkname, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(a.full(target), &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return invalid(hdr.Name, "hardlink target %q is missing or a directory", hdr.Linkname)
		}
		if target == rel {
			return nil
		}
		if _, err := a.clear(rel, false); err != nil {
			return err
		}
		if err := unix.Linkat(unix.AT_FDCWD, a.full(target), unix.AT_FDCWD, p, 0); err != nil {
			return fmt.Errorf("create hardlink %s: %w", rel, err)
		}
		return nil // a hardlink shares its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		if mode != unix.S_IFIFO && !a.opts.AllowDevices {
			return invalid(hdr.Name, "device nodes are not allowed")
		}
		if _, err := a.clear(rel, false); err != nil {
			return err
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(p, mode|uint32(hdr.Mode&0o7777), int(dev)); err != nil {
			return fmt.Errorf("create device %s: %w", rel, err)
		}
	default:
		return invalid(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
	if err := a.setMeta(p, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirTimes = append(a.dirTimes, dirTime{p, hdr})
		return nil
	}
	return setTimes(p, hdr)
}

func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (a *applier) whiteout(rel, parent, base string) error {
	if base == WhiteoutOpaque {
		if err := unix.Lsetxattr(a.full(parent), OverlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque: %w", parent, err)
		}
		return nil
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		return nil // other AUFS metadata (.wh..wh.plnk, ...) means nothing to overlay
	}
	name := base[len(WhiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return invalid(rel, "bad whiteout name")
	}
	target := path.Join(parent, name)
	if _, err := a.clear(target, false); err != nil {
		return err
	}
	if err := unix.Mknod(a.full(target), unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout %s: %w", target, err)
	}
	return nil
}

func (a *applier) writeFile(p string, hdr *tar.Header, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create file %s: %w", hdr.Name, err)
	}
	rt := &readTracker{r: io.LimitReader(r, hdr.Size)}
	n, err := io.CopyBuffer(f, rt, a.buf)
	a.size += n
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
		rt.err = err
	}
	if err != nil {
		f.Close()
		if rt.err != nil {
			return a.readError("read "+hdr.Name, err)
		}
		// The stream was fine: writing the file failed (a full disk).
		return fmt.Errorf("write %s: %w", hdr.Name, err)
	}
	if !a.opts.NoChown {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			f.Close()
			return fmt.Errorf("chown %s: %w", hdr.Name, err)
		}
	}
	if err := setXattrs(p, hdr); err != nil {
		f.Close()
		return err
	}
	if err := unix.Fchmod(int(f.Fd()), uint32(hdr.Mode&0o7777)); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", hdr.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", hdr.Name, err)
	}
	return setTimes(p, hdr)
}

// setMeta applies owner, xattrs and mode; chown first, because it clears the
// set-id bits.
func (a *applier) setMeta(p string, hdr *tar.Header) error {
	if !a.opts.NoChown {
		if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %s: %w", hdr.Name, err)
		}
	}
	if err := setXattrs(p, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return nil
	}
	if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %s: %w", hdr.Name, err)
	}
	return nil
}

const paxXattr = "SCHILY.xattr."

func setXattrs(p string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				continue // as docker: a file system without xattrs still takes the layer
			}
			return fmt.Errorf("set xattr %s on %s: %w", name, hdr.Name, err)
		}
	}
	return nil
}

func setTimes(p string, hdr *tar.Header) error {
	mt := hdr.ModTime
	at := hdr.AccessTime
	if at.IsZero() {
		at = mt
	}
	ts := []unix.Timespec{timespec(at), timespec(mt)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times on %s: %w", hdr.Name, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return unix.Timespec{Sec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}
