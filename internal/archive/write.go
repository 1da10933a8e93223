package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteOptions tune WriteTree.
type WriteOptions struct {
	// Whiteouts converts overlayfs whiteouts (0/0 character devices) and
	// opaque directories into ".wh." entries: set it when dir is an upper
	// dir that becomes a layer.
	Whiteouts bool
	// Skip leaves out the entry at rel (slash-separated, relative to dir)
	// and, for a directory, everything below it; nil keeps everything.
	Skip func(rel string, st *unix.Stat_t) bool
	// MaxTime, when set, replaces every later modification time
	// (SOURCE_DATE_EPOCH: a RUN step's files then give the same layer).
	MaxTime time.Time
}

// WriteTree writes the tree under dir as a tar stream to w, in lexical
// order, with normalised headers (no user or group names, no access or
// change times, whole-second modification times), so the same tree always
// gives the same bytes.
func WriteTree(ctx context.Context, w io.Writer, dir string, opts WriteOptions) error {
	tw := tar.NewWriter(w)
	wr := &treeWriter{ctx: ctx, tw: tw, root: filepath.Clean(dir), opts: opts, links: map[[2]uint64]string{}, buf: make([]byte, 128<<10)}
	if err := wr.walk(""); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish tar of %s: %w", dir, err)
	}
	return nil
}

type treeWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	root  string
	opts  WriteOptions
	links map[[2]uint64]string
	buf   []byte
	n     int
}

// walk writes the children of the directory rel ("" for the root).
func (t *treeWriter) walk(rel string) error {
	p := filepath.Join(t.root, rel)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read directory %s: %w", p, err)
	}
	sort.Strings(names)
	for _, name := range names {
		t.n++
		if t.n%256 == 0 {
			if err := t.ctx.Err(); err != nil {
				return err
			}
		}
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		isDir, err := t.entry(crel)
		if err != nil {
			return err
		}
		if isDir {
			if err := t.walk(crel); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *treeWriter) entry(rel string) (bool, error) {
	p := filepath.Join(t.root, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil // removed while walking (a running container)
		}
		return false, fmt.Errorf("stat %s: %w", p, err)
	}
	if t.opts.Skip != nil && t.opts.Skip(rel, &st) {
		return false, nil
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	if !t.opts.MaxTime.IsZero() && hdr.ModTime.After(t.opts.MaxTime) {
		hdr.ModTime = t.opts.MaxTime
	}
	fmtBits := st.Mode & unix.S_IFMT
	if t.opts.Whiteouts && fmtBits == unix.S_IFCHR && st.Rdev == 0 {
		dir, base := filepath.Split(rel)
		hdr.Name = dir + WhiteoutPrefix + base
		hdr.Typeflag = tar.TypeReg
		hdr.Mode = 0o600
		return false, t.write(hdr)
	}
	switch fmtBits {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				return false, t.write(hdr)
			}
			t.links[key] = rel
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return false, fmt.Errorf("read symlink %s: %w", p, err)
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if fmtBits == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return false, nil // sockets do not belong in a layer
	}
	opaque, err := t.xattrs(p, hdr)
	if err != nil {
		return false, err
	}
	if err := t.write(hdr); err != nil {
		return false, err
	}
	if hdr.Typeflag == tar.TypeReg {
		if err := t.copyFile(p, hdr.Size); err != nil {
			return false, err
		}
	}
	if opaque {
		oh := &tar.Header{Name: rel + "/" + WhiteoutOpaque, Typeflag: tar.TypeReg, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Format: tar.FormatPAX}
		if err := t.write(oh); err != nil {
			return false, err
		}
	}
	return fmtBits == unix.S_IFDIR, nil
}

func (t *treeWriter) write(hdr *tar.Header) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", hdr.Name, err)
	}
	return nil
}

func (t *treeWriter) copyFile(p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	// A file that shrinks or grows while a container runs is cut or padded
	// to the size in its header, which keeps the tar well-formed.
	n, err := io.CopyBuffer(t.tw, io.LimitReader(f, size), t.buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", p, err)
	}
	if n < size {
		if _, err := io.CopyN(t.tw, zeros{}, size-n); err != nil {
			return fmt.Errorf("pad %s: %w", p, err)
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// xattrs records the xattrs worth carrying in a layer, in PAX records, and
// reports whether the entry is an opaque overlay directory.
func (t *treeWriter) xattrs(p string, hdr *tar.Header) (opaque bool, err error) {
	names, err := listXattrs(p)
	if err != nil || len(names) == 0 {
		return false, err
	}
	for _, name := range names {
		if name == OverlayOpaqueXattr {
			v, _ := getXattr(p, name)
			opaque = t.opts.Whiteouts && hdr.Typeflag == tar.TypeDir && string(v) == "y"
			continue
		}
		if strings.HasPrefix(name, "trusted.") || name == "security.selinux" {
			continue
		}
		v, err := getXattr(p, name)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+name] = string(v)
	}
	return opaque, nil
}

func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
