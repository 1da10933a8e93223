package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ADD's remote sources: an http(s) URL is downloaded as one file, a git
// repository (git@host:repo, git://, ssh://, or an http(s) URL whose path
// ends in .git, each with an optional #ref:subdir) is cloned with the git
// binary and copied like a directory.

// isRemote reports whether an ADD source is a URL or a git repository.
func isRemote(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") || isGit(src)
}

// isGit follows BuildKit's recognition of git sources.
func isGit(src string) bool {
	for _, p := range []string{"git@", "git://", "ssh://"} {
		if strings.HasPrefix(src, p) {
			return true
		}
	}
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		u, err := url.Parse(src)
		return err == nil && strings.HasSuffix(u.Path, ".git")
	}
	return false
}

// urlFileName is the file name ADD gives a download: the filename of a
// Content-Disposition header (as BuildKit), else the URL path's last
// element.
func urlFileName(u *url.URL, disposition string) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if name := path.Base("/" + params["filename"]); name != "/" {
			return name
		}
	}
	if name := path.Base(u.Path); name != "/" && name != "." && name != "" {
		return name
	}
	return ""
}

// addURL downloads src into a temporary file (removed by the returned
// clean-up) and adds it at dest: mode 0600 as docker gives downloads
// (unless --chmod), modification time from Last-Modified. It is not
// unpacked unless unpack (BuildKit's ADD --unpack=true), and then only
// if it is a tar (plain or compressed), into the directory dest.
// checksum ("sha256:HEX") is verified when set.
func (b *builder) addURL(ctx context.Context, set layerSet, src, dest string, destDir bool, owner *[2]int, mode *fs.FileMode, checksum string, unpack bool) (func(), error) {
	u, err := url.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ADD %s: failed to GET with status %s", src, resp.Status)
	}
	f, err := os.CreateTemp("", "berth-build-url-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("ADD %s: download: %w", src, err)
	}
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" {
		algo, _, _ := strings.Cut(checksum, ":")
		if algo != "sha256" {
			cleanup()
			return nil, fmt.Errorf("ADD --checksum=%s: only sha256 is supported", checksum)
		}
		if checksum != sum {
			cleanup()
			return nil, fmt.Errorf("ADD %s: digest mismatch %s: %s", src, sum, checksum)
		}
	}
	if unpack && isArchive(f.Name()) {
		if err := b.addArchive(set, f.Name(), dest, owner); err != nil {
			cleanup()
			return nil, err
		}
		return cleanup, nil
	}
	target := dest
	if destDir {
		name := urlFileName(u, resp.Header.Get("Content-Disposition"))
		if name == "" {
			cleanup()
			return nil, fmt.Errorf("ADD %s: cannot determine a file name from the URL; give the destination a file name", src)
		}
		target = path.Join(dest, name)
	}
	mtime := time.Unix(0, 0)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	name := strings.TrimPrefix(path.Clean(target), "/")
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: n, ModTime: b.clamp(mtime)}
	if owner != nil {
		hdr.Uid, hdr.Gid = owner[0], owner[1]
	}
	if mode != nil {
		hdr.Mode = int64(*mode)
	}
	set[name] = &entry{hdr: hdr, src: f.Name()}
	return cleanup, nil
}

// gitSource splits a git source into the repository, ref and subdir.
func gitSource(src string) (repo, ref, subdir string) {
	repo, frag, _ := strings.Cut(src, "#")
	ref, subdir, _ = strings.Cut(frag, ":")
	return repo, ref, subdir
}

// addGit clones src and adds its tree (subdir, if named) at dest. The
// .git directory stays out unless keepGitDir; times are fixed (epoch, or
// SOURCE_DATE_EPOCH) so the same commit gives the same layer.
func (b *builder) addGit(ctx context.Context, set layerSet, src, dest string, owner *[2]int, mode *fs.FileMode, keepGitDir bool) (func(), error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("ADD %s: a git source needs the git binary on the engine's host: %w", src, err)
	}
	repo, ref, subdir := gitSource(src)
	tmp, err := os.MkdirTemp("", "berth-build-git-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dir := filepath.Join(tmp, "repo")
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, gitBin, args...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "LC_ALL=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ADD %s: git %s: %w: %s", src, args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	// A full clone: the dumb HTTP protocol cannot fetch shallow.
	if err := git("clone", "--quiet", "--no-checkout", "--", repo, dir); err != nil {
		cleanup()
		return nil, err
	}
	if ref == "" {
		ref = "HEAD"
	}
	if err := git("-C", dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", ref, "--"); err != nil {
		cleanup()
		return nil, err
	}
	root := dir
	if subdir != "" {
		root = filepath.Join(dir, filepath.Clean("/"+subdir))
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			cleanup()
			return nil, fmt.Errorf("ADD %s: %s is not a directory of the repository", src, subdir)
		}
	}
	before := map[string]bool{}
	for k := range set {
		before[k] = true
	}
	skip := func(rel string) bool {
		return !keepGitDir && root == dir && (rel == ".git" || strings.HasPrefix(rel, ".git/"))
	}
	if err := b.addTree(set, root, "", dest, skip, owner, mode); err != nil {
		cleanup()
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	fixed := b.clamp(time.Unix(0, 0))
	for k, e := range set {
		if !before[k] {
			e.hdr.ModTime = fixed
		}
	}
	return cleanup, nil
}
