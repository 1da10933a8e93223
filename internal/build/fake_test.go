package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// fakeFile is one member of a fake image's merged tree.
type fakeFile struct {
	typ      byte
	mode     int64
	uid, gid int
	data     string
	link     string
}

type fakeImage struct {
	img   Image
	files map[string]fakeFile // absolute path -> file
}

// fakeBackend keeps images as merged file trees in memory. RUN does not
// execute anything: it records the command, fails with "exit N", and
// otherwise creates /run.log listing the commands run so far.
type fakeBackend struct {
	t      *testing.T
	images map[string]*fakeImage
	runs   []string
	mounts [][]mount.Mount // each RUN's Step.Mounts
}

func newFakeBackend(t *testing.T) *fakeBackend {
	fb := &fakeBackend{t: t, images: map[string]*fakeImage{}}
	base := &fakeImage{img: Image{ID: "sha256:base"}, files: map[string]fakeFile{
		"/bin":        {typ: tar.TypeDir, mode: 0o755},
		"/bin/sh":     {typ: tar.TypeReg, mode: 0o755, data: "#!shell"},
		"/etc":        {typ: tar.TypeDir, mode: 0o755},
		"/tmp":        {typ: tar.TypeDir, mode: 0o1777},
		"/etc/passwd": {typ: tar.TypeReg, mode: 0o644, data: "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001::/home/app:/bin/sh\n"},
		"/etc/group":  {typ: tar.TypeReg, mode: 0o644, data: "root:x:0:\nstaff:x:50:\n"},
	}}
	base.img.Config.Env = []string{defaultPath}
	base.img.Config.Cmd = []string{"sh"}
	fb.images["busybox"] = base
	fb.images[base.img.ID] = base
	return fb
}

func (f *fakeBackend) ResolveImage(ctx context.Context, ref string) (Image, error) {
	img, ok := f.images[ref]
	if !ok {
		return Image{}, fmt.Errorf("No such image: %s", ref)
	}
	return img.img, nil
}

func (f *fakeBackend) derive(step Step, files map[string]fakeFile) string {
	raw, _ := json.Marshal(struct {
		S Step
		F map[string]fakeFile
	}{step, files})
	id := fmt.Sprintf("sha256:%x", sha256.Sum256(append(raw, fmt.Sprint(files)...)))
	f.images[id] = &fakeImage{img: Image{ID: id, Config: step.Config}, files: files}
	return id
}

func (f *fakeBackend) parentFiles(id string) map[string]fakeFile {
	if id == "" {
		return map[string]fakeFile{}
	}
	return maps.Clone(f.images[id].files)
}

var exitRE = regexp.MustCompile(`exit (\d+)`)

func (f *fakeBackend) Run(ctx context.Context, step Step, run *container.Config, out io.Writer) (string, error) {
	cmd := strings.Join(run.Cmd, " ")
	if m := exitRE.FindStringSubmatch(cmd); m != nil && m[1] != "0" {
		code, _ := strconv.Atoi(m[1])
		return "", &ExitError{Cmd: run.Cmd, Code: code}
	}
	fmt.Fprintf(out, "ran %s\n", cmd)
	f.runs = append(f.runs, cmd)
	f.mounts = append(f.mounts, step.Mounts)
	files := f.parentFiles(step.Parent)
	log := files["/run.log"].data + fmt.Sprintf("%s env=%s wd=%s user=%s\n", cmd, strings.Join(run.Env, ","), run.WorkingDir, run.User)
	files["/run.log"] = fakeFile{typ: tar.TypeReg, mode: 0o644, data: log}
	return f.derive(step, files), nil
}

func (f *fakeBackend) Apply(ctx context.Context, step Step, layer io.Reader) (string, error) {
	files := f.parentFiles(step.Parent)
	if layer != nil {
		tr := tar.NewReader(layer)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", err
			}
			data, _ := io.ReadAll(tr)
			p := "/" + strings.TrimSuffix(hdr.Name, "/")
			files[p] = fakeFile{typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, data: string(data), link: hdr.Linkname}
		}
	}
	return f.derive(step, files), nil
}

func (f *fakeBackend) Mount(ctx context.Context, id string) (string, func(), error) {
	img, ok := f.images[id]
	if !ok {
		return "", nil, fmt.Errorf("No such image: %s", id)
	}
	dir := f.t.TempDir()
	for p, ff := range img.files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		switch ff.typ {
		case tar.TypeDir:
			os.MkdirAll(full, 0o755)
			mode := fs.FileMode(ff.mode & 0o777)
			if ff.mode&0o1000 != 0 {
				mode |= fs.ModeSticky
			}
			os.Chmod(full, mode)
		case tar.TypeSymlink:
			os.Symlink(ff.link, full)
		default:
			os.WriteFile(full, []byte(ff.data), fs.FileMode(ff.mode&0o777))
		}
	}
	return dir, func() {}, nil
}

// memCache is an in-memory Cache.
type memCache map[string]string

func (m memCache) Lookup(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m memCache) Store(k, v string)              { m[k] = v }

// describe renders an image's config and tree for the golden files.
func (f *fakeBackend) describe(id string) string {
	img := f.images[id]
	var b strings.Builder
	cfg, _ := json.MarshalIndent(img.img.Config, "", "  ")
	fmt.Fprintf(&b, "config: %s\n", cfg)
	var paths []string
	for p := range img.files {
		paths = append(paths, p)
	}
	sortStrings(paths)
	for _, p := range paths {
		ff := img.files[p]
		line := fmt.Sprintf("%s %c %o %d:%d", p, ff.typ, ff.mode, ff.uid, ff.gid)
		if ff.typ == tar.TypeReg {
			if utf8.ValidString(ff.data) && !strings.ContainsRune(ff.data, 0) {
				line += fmt.Sprintf(" %q", ff.data)
			} else {
				line += fmt.Sprintf(" %d bytes", len(ff.data))
			}
		}
		if ff.link != "" {
			line += " -> " + ff.link
		}
		fmt.Fprintln(&b, line)
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if path.Clean(s[j]) < path.Clean(s[i]) {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}
