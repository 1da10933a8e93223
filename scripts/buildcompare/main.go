// Command buildcompare prints the difference report of
// scripts/build-compare.sh: for each corpus case built by docker's classic
// builder and by berth, the image config fields and the merged file trees
// side by side, or how each side failed.
//
// Each side's directory holds one directory per case with "code" (the
// client's exit status), "out.txt", "err.txt" and, on success, "image.tar"
// (a `docker save` archive). Usage:
//
//	buildcompare -docker DIR -berth DIR [-ctx DIR] [CASE...]
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/internal/fixture/savedimage"
)

func main() {
	dockerDir := flag.String("docker", "", "results of docker's classic builder")
	berthDir := flag.String("berth", "", "results of berth")
	ctxDir := flag.String("ctx", "internal/build/testdata", "the corpus (to recognise BuildKit-only Dockerfiles)")
	flag.Parse()
	cases := flag.Args()
	if len(cases) == 0 {
		entries, err := os.ReadDir(*dockerDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, e := range entries {
			cases = append(cases, e.Name())
		}
	}
	counts := map[string]int{}
	for _, name := range cases {
		if _, err := os.Stat(filepath.Join(*dockerDir, name, "code")); err != nil {
			continue
		}
		verdict, lines := compareCase(filepath.Join(*dockerDir, name), filepath.Join(*berthDir, name), filepath.Join(*ctxDir, name, "Dockerfile"))
		counts[verdict]++
		fmt.Printf("== %s: %s\n", name, verdict)
		for _, l := range lines {
			fmt.Println("   " + l)
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println()
	fmt.Println("summary:")
	for _, k := range keys {
		fmt.Printf("  %-36s %d\n", k, counts[k])
	}
	if counts["DIFFERENT"]+counts["berth fails, docker builds"]+counts["docker fails, berth builds"] > 0 {
		os.Exit(1)
	}
}

// side is one builder's result for one case.
type side struct {
	code int
	err  string // the client's stderr, trimmed
	img  *image
}

func loadSide(dir string) (side, error) {
	var s side
	b, err := os.ReadFile(filepath.Join(dir, "code"))
	if err != nil {
		return s, err
	}
	fmt.Sscan(string(b), &s.code)
	e, _ := os.ReadFile(filepath.Join(dir, "err.txt"))
	s.err = lastLines(string(e))
	if s.code == 0 {
		s.img, err = loadImage(filepath.Join(dir, "image.tar"))
	}
	return s, err
}

// lastLines keeps the error lines of a client's stderr, without the
// classic builder's deprecation notice.
func lastLines(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.Contains(l, "DEPRECATED") || strings.Contains(l, "BuildKit is currently disabled") || strings.TrimSpace(l) == "environment-variable." ||
			strings.Contains(l, "Install the buildx component") || strings.Contains(l, "https://docs.docker.com/go/buildx/") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " | ")
}

var buildkitOnly = regexp.MustCompile(`(?i)requires BuildKit|unknown flag: (mount|link|parents|exclude)|heredoc`)

// lineNo finds the Dockerfile line a failure names ("line 3", "Dockerfile:3").
var lineNo = regexp.MustCompile(`(?:line |Dockerfile:)(\d+)`)

func compareCase(dockerDir, berthDir, dockerfile string) (string, []string) {
	d, err := loadSide(dockerDir)
	if err != nil {
		return "ERROR", []string{"docker side: " + err.Error()}
	}
	b, err := loadSide(berthDir)
	if err != nil {
		return "ERROR", []string{"berth side: " + err.Error()}
	}
	df, _ := os.ReadFile(dockerfile)
	switch {
	case d.code != 0 && (buildkitOnly.MatchString(d.err) || bytes.Contains(df, []byte("<<"))):
		return "docker classic: unsupported", []string{fmt.Sprintf("docker: exit %d %s", d.code, d.err), fmt.Sprintf("berth:  exit %d %s", b.code, b.err)}
	case d.code != 0 && b.code != 0:
		lines := []string{fmt.Sprintf("docker: exit %d %s", d.code, d.err), fmt.Sprintf("berth:  exit %d %s", b.code, b.err)}
		dl, bl := lineNo.FindStringSubmatch(d.err), lineNo.FindStringSubmatch(b.err)
		switch {
		case d.code != b.code:
			return "both fail, exit codes differ", lines
		case dl != nil && (bl == nil || bl[1] != dl[1]):
			return "both fail, line differs", lines
		}
		return "both fail", lines
	case d.code != 0:
		return "docker fails, berth builds", []string{fmt.Sprintf("docker: exit %d %s", d.code, d.err)}
	case b.code != 0:
		return "berth fails, docker builds", []string{fmt.Sprintf("berth:  exit %d %s", b.code, b.err)}
	}
	diffs := compareConfig(d.img.config.Config.ImageConfig, b.img.config.Config.ImageConfig)
	diffs = append(diffs, compareDockerOnly(d.img.config.Config.dockerConfig, b.img.config.Config.dockerConfig)...)
	diffs = append(diffs, compareTrees(d.img.files, b.img.files)...)
	if len(diffs) == 0 {
		return "same", nil
	}
	return "DIFFERENT", diffs
}

func compareConfig(d, b ocispec.ImageConfig) []string {
	fields := []struct {
		name string
		d, b any
	}{
		{"Env", d.Env, b.Env},
		{"Cmd", d.Cmd, b.Cmd},
		{"Entrypoint", d.Entrypoint, b.Entrypoint},
		{"WorkingDir", d.WorkingDir, b.WorkingDir},
		{"User", d.User, b.User},
		{"Labels", d.Labels, b.Labels},
		{"ExposedPorts", d.ExposedPorts, b.ExposedPorts},
		{"Volumes", d.Volumes, b.Volumes},
		{"StopSignal", d.StopSignal, b.StopSignal},
	}
	var out []string
	for _, f := range fields {
		dj, bj := canon(f.d), canon(f.b)
		if dj != bj {
			out = append(out, fmt.Sprintf("config.%s: docker=%s berth=%s", f.name, dj, bj))
		}
	}
	return out
}

// canon is a value's JSON with empty collections and null treated alike:
// docker writes null where berth may write [] and the reverse.
func canon(v any) string {
	b, _ := json.Marshal(v)
	switch string(b) {
	case "null", "[]", "{}", `""`:
		return "-"
	}
	return string(b)
}

// dockerConfig is the part of a docker image config that the OCI type
// lacks (Healthcheck, Shell, OnBuild).
type dockerConfig struct {
	Healthcheck json.RawMessage
	Shell       []string
	OnBuild     []string
}

func compareDockerOnly(d, b dockerConfig) []string {
	var out []string
	if canon(d.Healthcheck) != canon(b.Healthcheck) {
		out = append(out, fmt.Sprintf("config.Healthcheck: docker=%s berth=%s", canon(d.Healthcheck), canon(b.Healthcheck)))
	}
	if canon(d.Shell) != canon(b.Shell) {
		out = append(out, fmt.Sprintf("config.Shell: docker=%s berth=%s", canon(d.Shell), canon(b.Shell)))
	}
	if canon(d.OnBuild) != canon(b.OnBuild) {
		out = append(out, fmt.Sprintf("config.OnBuild: docker=%s berth=%s", canon(d.OnBuild), canon(b.OnBuild)))
	}
	return out
}

// entry is one path of a merged image tree.
type entry struct {
	typ  string // dir, reg, symlink, char, block, fifo
	mode int64  // permission and setuid/setgid/sticky bits
	uid  int
	gid  int
	size int64
	sum  string // sha256 prefix of a regular file's content
	link string // symlink target
}

func (e entry) String() string {
	s := fmt.Sprintf("%s %04o %d:%d", e.typ, e.mode, e.uid, e.gid)
	switch e.typ {
	case "reg":
		s += fmt.Sprintf(" %dB %s", e.size, e.sum)
	case "symlink":
		s += " -> " + e.link
	}
	return s
}

type image struct {
	config struct {
		ocispec.Image
		Config struct {
			ocispec.ImageConfig
			dockerConfig
		} `json:"config"`
	}
	files map[string]entry
}

func compareTrees(d, b map[string]entry) []string {
	var paths []string
	for p := range d {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := d[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		de, din := d[p]
		be, bin := b[p]
		switch {
		case !bin:
			out = append(out, fmt.Sprintf("%s: only docker has it (%s)", p, de))
		case !din:
			out = append(out, fmt.Sprintf("%s: only berth has it (%s)", p, be))
		case de != be:
			out = append(out, fmt.Sprintf("%s: docker=%s berth=%s", p, de, be))
		}
	}
	return out
}

// loadImage reads a `docker save` archive: the config and the merged
// tree of its layers (savedimage), as entries.
func loadImage(file string) (*image, error) {
	saved, err := savedimage.Load(file)
	if err != nil {
		return nil, err
	}
	img := &image{files: map[string]entry{}}
	if err := json.Unmarshal(saved.Config, &img.config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", file, err)
	}
	for p, f := range saved.Files {
		img.files[p] = toEntry(f)
	}
	return img, nil
}

// toEntry is what is compared of a path. A hard link is compared as the
// file it links to: whether a builder writes links or copies is not a
// user-visible difference.
func toEntry(f savedimage.File) entry {
	h := f.Header
	if h.Typeflag == tar.TypeLink && f.Target != nil {
		h = f.Target
	}
	e := entry{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}
	switch h.Typeflag {
	case tar.TypeDir:
		e.typ = "dir"
	case tar.TypeReg:
		e.typ, e.size, e.sum = "reg", h.Size, f.Sum[:12]
	case tar.TypeSymlink:
		e.typ, e.link = "symlink", h.Linkname
	case tar.TypeChar:
		e.typ = "char"
	case tar.TypeBlock:
		e.typ = "block"
	case tar.TypeFifo:
		e.typ = "fifo"
	default:
		e.typ = fmt.Sprintf("type%c", h.Typeflag)
	}
	return e
}
