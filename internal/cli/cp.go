package cli

// berth cp, with docker's semantics: the daemon answers with (or takes) a
// tar whose top entry is named after the source's base name; the client
// decides where to extract it and renames that top entry so that the copy
// lands where `cp` would put it:
//
//	destination exists, is a directory   extract into it
//	exists, is a file; source a file     extract into its parent, renamed
//	exists, is a file; source a dir      "cannot copy directory"
//	missing; source a directory          extract into the parent, renamed
//	missing, ends in "/"; source a file  "no such directory"
//	missing; source a file               extract into the parent, renamed
//
// A source ending in "/." copies the directory's contents rather than the
// directory itself.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth/internal/archive"
)

type cpOptions struct {
	followLink, copyUIDGID, quiet bool
	source, destination           string
}

func newCpCommand(c *Cli) *cobra.Command {
	var opts cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\n" +
			"and extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\n" +
			"container source to stdout.",
		Args: requiresExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.source, opts.destination = args[0], args[1]
			if !cmd.Flags().Changed("quiet") {
				// As docker: progress only for a person watching.
				opts.quiet = !c.Err().IsTerminal()
			}
			return runCp(cmdContext(cmd), c, opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	flags.BoolVarP(&opts.copyUIDGID, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; an absolute path or one starting with
// "." is local even if it holds a colon.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

func runCp(ctx context.Context, c *Cli, opts cpOptions) error {
	if opts.source == "" {
		return errors.New("source can not be empty")
	}
	if opts.destination == "" {
		return errors.New("destination can not be empty")
	}
	srcCtr, srcPath := splitCpArg(opts.source)
	dstCtr, dstPath := splitCpArg(opts.destination)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr != "":
		return copyFromContainer(ctx, c, opts, srcCtr, srcPath, dstPath)
	case dstCtr != "":
		return copyToContainer(ctx, c, opts, srcPath, dstCtr, dstPath)
	}
	return errors.New("must specify at least one container source")
}

// copyInfo describes one end of a copy.
type copyInfo struct {
	path       string
	exists     bool
	isDir      bool
	rebaseName string // the name the top entry must carry, when not path's base
}

func copyFromContainer(ctx context.Context, c *Cli, opts cpOptions, ctr, srcPath, dstPath string) error {
	if dstPath != "-" {
		var err error
		if dstPath, err = resolveLocalPath(dstPath); err != nil {
			return err
		}
		if err := validateOutputPath(dstPath); err != nil {
			return err
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	var rebaseName string
	if opts.followLink {
		st, err := apiClient.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			srcPath, rebaseName = rebasePath(srcPath, target)
		}
	}
	res, err := apiClient.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dstPath == "-" {
		_, err = io.Copy(c.Out(), res.Content)
		return err
	}
	counter := &countingReader{r: res.Content}
	src := copyInfo{path: srcPath, exists: true, isDir: res.Stat.Mode.IsDir(), rebaseName: rebaseName}
	dst, err := destinationInfo(dstPath)
	if err != nil {
		return err
	}
	dir, oldBase, newBase, err := prepareCopy(src, dst)
	if err != nil {
		return err
	}
	if rebaseName != "" {
		// The daemon named the entries after the link target.
		if oldBase == "" {
			newBase = rebaseName
		}
		_, oldBase = splitPathDirEntry(srcPath)
	}
	if oldBase == "/" {
		oldBase = "." // the root's entries "/x" are read as "./x"
	}
	if err := extractLocal(ctx, counter, dir, oldBase, newBase); err != nil {
		return err
	}
	if !opts.quiet {
		fmt.Fprintf(c.Err(), "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(counter.n), 3), dstPath)
	}
	return nil
}

func copyToContainer(ctx context.Context, c *Cli, opts cpOptions, srcPath, ctr, dstPath string) error {
	if srcPath != "-" {
		var err error
		if srcPath, err = resolveLocalPath(srcPath); err != nil {
			return err
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	dst := copyInfo{path: dstPath}
	st, err := apiClient.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath})
	if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
		target := st.Stat.LinkTarget
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(dstPath)
			target = filepath.Join(parent, target)
		}
		dst.path = target
		st, err = apiClient.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
	}
	if err == nil {
		if m := st.Stat.Mode; m&os.ModeDevice != 0 || (!m.IsDir() && !m.IsRegular()) {
			return fmt.Errorf("destination %q must be a directory or a regular file", ctr+":"+dstPath)
		}
		// Any other error: assume the parent exists; the extraction
		// reports conflicts and a missing parent.
		dst.exists, dst.isDir = true, st.Stat.Mode.IsDir()
	}
	var (
		content   io.Reader
		extractTo string
		counter   *countingReader
	)
	if srcPath == "-" {
		if !dst.isDir {
			return fmt.Errorf("destination %q must be a directory", ctr+":"+dstPath)
		}
		content, extractTo = c.In(), dst.path
	} else {
		src, err := sourceInfo(srcPath, opts.followLink)
		if err != nil {
			return err
		}
		dir, oldBase, newBase, err := prepareCopy(src, dst)
		if err != nil {
			return err
		}
		_, base := splitPathDirEntry(src.path)
		name := base
		if src.rebaseName != "" {
			name = src.rebaseName
		}
		if oldBase != "" {
			name = newBase
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarLocal(ctx, pw, src.path, name)) }()
		defer pr.Close()
		counter = &countingReader{r: pr}
		content, extractTo = counter, dir
	}
	_, err = apiClient.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: extractTo, Content: content, CopyUIDGID: opts.copyUIDGID,
	})
	if err != nil {
		return err
	}
	if !opts.quiet && counter != nil {
		fmt.Fprintf(c.Err(), "Successfully copied %s to %s:%s\n", units.HumanSizeWithPrecision(float64(counter.n), 3), ctr, dst.path)
	}
	return nil
}

// prepareCopy decides, from what is known of both ends, the directory to
// extract into and how the top entry must be renamed (oldBase to newBase;
// both empty when it keeps its name).
func prepareCopy(src, dst copyInfo) (dir, oldBase, newBase string, err error) {
	dstDir, dstBase := splitPathDirEntry(dst.path)
	_, srcBase := splitPathDirEntry(src.path)
	if src.rebaseName != "" {
		srcBase = src.rebaseName
	}
	switch {
	case dst.exists && dst.isDir:
		return dst.path, "", "", nil
	case dst.exists && src.isDir:
		return "", "", "", errors.New("cannot copy directory")
	case dst.exists, src.isDir:
		return dstDir, srcBase, dstBase, nil
	case assertsDirectory(dst.path):
		return "", "", "", errors.New("no such directory")
	}
	return dstDir, srcBase, dstBase, nil
}

// sourceInfo stats a local source; symlinks of the parent directories are
// followed, the last one only with -L.
func sourceInfo(p string, followLink bool) (copyInfo, error) {
	var resolved, rebaseName string
	if followLink {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		resolved, rebaseName = rebasePath(p, r)
	} else {
		dir, base := filepath.Split(p)
		r, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return copyInfo{}, err
		}
		resolved = r + string(filepath.Separator) + base
		if hasTrailingSep(p) && filepath.Base(p) != filepath.Base(resolved) {
			rebaseName = filepath.Base(p)
		}
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{path: resolved, exists: true, isDir: fi.IsDir(), rebaseName: rebaseName}, nil
}

// destinationInfo stats a local destination, following symlinks (a copy
// onto a link writes its target); a missing path needs an existing parent.
func destinationInfo(p string) (copyInfo, error) {
	orig := p
	fi, err := os.Lstat(p)
	for n := 0; err == nil && fi.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, errors.New("too many symlinks in " + orig)
		}
		target, rerr := os.Readlink(p)
		if rerr != nil {
			return copyInfo{}, rerr
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		fi, err = os.Lstat(p)
	}
	if err == nil {
		return copyInfo{path: p, exists: true, isDir: fi.IsDir()}, nil
	}
	if !os.IsNotExist(err) {
		return copyInfo{}, err
	}
	parent, _ := splitPathDirEntry(p)
	pfi, err := os.Stat(parent)
	if err != nil {
		return copyInfo{}, err
	}
	if !pfi.IsDir() {
		return copyInfo{}, errors.New("not a directory")
	}
	return copyInfo{path: p}, nil
}

// rebasePath carries a trailing "/" or "/." of p over to its resolved form
// and reports the name the top entry must keep when resolving changed it.
func rebasePath(p, resolved string) (string, string) {
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += string(filepath.Separator) + "."
	}
	if hasTrailingSep(p) && !hasTrailingSep(resolved) {
		resolved += string(filepath.Separator)
	}
	if filepath.Base(p) != filepath.Base(resolved) {
		return resolved, filepath.Base(p)
	}
	return resolved, ""
}

// splitPathDirEntry splits p into its directory and last element, keeping
// a final "." ("/a/b/." gives "/a/b" and ".").
func splitPathDirEntry(p string) (string, string) {
	cleaned := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		cleaned += string(filepath.Separator) + "."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

func specifiesCurrentDir(p string) bool { return filepath.Base(p) == "." }

func hasTrailingSep(p string) bool { return len(p) > 0 && p[len(p)-1] == filepath.Separator }

func assertsDirectory(p string) bool { return hasTrailingSep(p) || specifiesCurrentDir(p) }

// resolveLocalPath makes p absolute, keeping a trailing "/" or "/.".
func resolveLocalPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	switch {
	case specifiesCurrentDir(p) && !specifiesCurrentDir(abs):
		abs += string(filepath.Separator) + "."
	case hasTrailingSep(p) && !hasTrailingSep(abs):
		abs += string(filepath.Separator)
	}
	return abs, nil
}

// validateOutputPath checks that the output's parent exists and that the
// output, if it exists, is a directory or a regular file.
func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return fmt.Errorf("invalid output path: directory %q does not exist", dir)
	}
	fi, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().IsRegular() {
		return nil
	}
	what := "an irregular file"
	if fi.Mode()&os.ModeDevice != 0 {
		what = "a device"
	}
	return fmt.Errorf("invalid output path: %q must be a directory or a regular file: got %s", p, what)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tarLocal writes the tar of the local path p with its top entry named
// name: a file is one entry, a directory itself and its contents.
func tarLocal(ctx context.Context, w io.Writer, p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	if fi.IsDir() {
		hdr.Name = strings.TrimSuffix(name, "/") + "/"
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
		f.Close()
		if err != nil {
			return fmt.Errorf("archive %s: %w", p, err)
		}
	}
	if fi.IsDir() {
		// archive.WriteTree writes the children; prefix them with name.
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(archive.WriteTree(ctx, pw, p, archive.WriteOptions{})) }()
		defer pr.Close()
		if err := renameEntries(tar.NewReader(pr), tw, func(n string) string { return strings.TrimSuffix(name, "/") + "/" + n }); err != nil {
			return err
		}
	}
	return tw.Close()
}

type tarWriter interface {
	io.Writer
	WriteHeader(*tar.Header) error
}

// renameEntries copies every entry of tr to tw with its name (and a
// hardlink's target) passed through rename.
func renameEntries(tr *tar.Reader, tw tarWriter, rename func(string) string) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		hdr.Name = rename(hdr.Name)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = rename(hdr.Linkname)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// extractLocal extracts the container's tar into the local directory dir,
// renaming the top entry oldBase to newBase when set. archive.Apply refuses
// entries that would land outside dir; a directory is never replaced by a
// non-directory or the reverse.
func extractLocal(ctx context.Context, r io.Reader, dir, oldBase, newBase string) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := renameEntries(tar.NewReader(r), &checkingWriter{Writer: tw, dir: dir}, func(n string) string {
			if strings.HasPrefix(n, "/") {
				n = "." + n // the root's entries, "/" and "/x", as dockerd names them
			}
			if oldBase == "" || oldBase == newBase {
				return n
			}
			if n == oldBase || n == oldBase+"/" {
				return newBase + n[len(oldBase):]
			}
			if rest, ok := strings.CutPrefix(n, oldBase+"/"); ok {
				return newBase + "/" + rest
			}
			return n
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	_, err := archive.Apply(ctx, dir, pr, archive.ApplyOptions{NoChown: true})
	pr.CloseWithError(errExtractDone)
	// The filter's error is the cause of Apply's read error.
	if ferr := <-errc; ferr != nil && !errors.Is(ferr, errExtractDone) {
		return ferr
	}
	return err
}

var errExtractDone = errors.New("extraction ended")

// checkingWriter refuses, before Apply sees them, entries that would
// replace a directory by a non-directory or the reverse, and whiteout names,
// which mean a deletion to Apply.
type checkingWriter struct {
	*tar.Writer
	dir string
}

func (w *checkingWriter) WriteHeader(hdr *tar.Header) error {
	rel := filepath.Clean(strings.TrimLeft(hdr.Name, "/"))
	if strings.HasPrefix(filepath.Base(rel), archive.WhiteoutPrefix) {
		return fmt.Errorf("refusing to extract %q: names starting with %q are reserved", hdr.Name, archive.WhiteoutPrefix)
	}
	if hdr.Typeflag == tar.TypeSymlink && !filepath.IsAbs(hdr.Linkname) {
		// As docker: a relative link may not point above the extraction
		// directory.
		if t := filepath.Join(filepath.Dir(rel), hdr.Linkname); t == ".." || strings.HasPrefix(t, "../") {
			return fmt.Errorf("invalid symlink %q -> %q", filepath.Join(w.dir, rel), hdr.Linkname)
		}
	}
	if rel != "." && !strings.HasPrefix(rel, "..") {
		if fi, err := os.Lstat(filepath.Join(w.dir, rel)); err == nil {
			isDir := hdr.Typeflag == tar.TypeDir
			if fi.IsDir() && !isDir {
				return fmt.Errorf("cannot overwrite directory %q with non-directory %q", filepath.Join(w.dir, rel), hdr.Name)
			}
			if !fi.IsDir() && isDir {
				return fmt.Errorf("cannot overwrite non-directory %q with directory %q", filepath.Join(w.dir, rel), hdr.Name)
			}
		}
	}
	return w.Writer.WriteHeader(hdr)
}
