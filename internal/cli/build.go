package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth/internal/build"
)

type buildOptions struct {
	context, dockerfile, target, iidfile string
	platform, progress, network          string
	tags, buildArgs, labels, secrets     []string
	why                                  []string
	noCache, quiet, pull, explain        bool
}

func newBuildCommand(c *Cli) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.context = args[0]
			return runBuild(cmdContext(cmd), c, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.dockerfile, "file", "f", "", "Name of the Dockerfile (default: \"PATH/Dockerfile\")")
	f.StringArrayVarP(&opts.tags, "tag", "t", nil, "Name and optionally a tag in the \"name:tag\" format")
	f.StringArrayVar(&opts.buildArgs, "build-arg", nil, "Set build-time variables")
	f.StringArrayVar(&opts.labels, "label", nil, "Set metadata for an image")
	f.StringVar(&opts.target, "target", "", "Set the target build stage to build")
	f.StringVar(&opts.platform, "platform", "", "Set the platform (only the engine's own can be built)")
	f.BoolVar(&opts.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.BoolVar(&opts.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.StringVar(&opts.iidfile, "iidfile", "", "Write the image ID to the file")
	f.StringVar(&opts.progress, "progress", "auto", "Set type of progress output (\"auto\", \"plain\", \"tty\", \"quiet\"): auto is a line per step on a terminal, plain the classic stream")
	f.StringVar(&opts.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.BoolVar(&opts.explain, "explain", false, "Print why each step missed the cache (berth)")
	f.StringArrayVar(&opts.why, "why", nil, "Print which .dockerignore rule includes or excludes PATH, and do not build (berth)")
	f.StringArrayVar(&opts.secrets, "secret", nil, "Secret to expose to RUN --mount=type=secret (format: \"id=mysecret,src=/local/secret\")")
	return cmd
}

func runBuild(ctx context.Context, c *Cli, opts buildOptions) error {
	if len(opts.why) > 0 {
		return runWhy(c, opts)
	}
	mode, err := progressMode(opts.progress, opts.quiet, c.Out().IsTerminal())
	if err != nil {
		return err
	}
	var body io.Reader
	var dfText []byte // the Dockerfile, to show a failed step's lines
	dockerfile := opts.dockerfile
	if opts.context == "-" {
		df, err := io.ReadAll(c.In())
		if err != nil {
			return err
		}
		if isContextArchive(df) {
			// A whole context as a tar (plain or compressed), as docker
			// build - takes it; -f names the Dockerfile inside it.
			body = bytes.NewReader(df)
		} else {
			dfText = df
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg})
			tw.Write(df)
			tw.Close()
			body, dockerfile = &buf, "Dockerfile"
		}
	} else {
		var err error
		var rd io.Reader
		rd, dockerfile, err = contextTar(opts.context, opts.dockerfile)
		if err != nil {
			return err
		}
		body = rd
		dfPath := opts.dockerfile
		if dfPath == "" {
			dfPath = filepath.Join(opts.context, "Dockerfile")
		}
		dfText, _ = os.ReadFile(dfPath) // only for showing a failed step
	}
	headers, err := controlHeaders(opts.secrets, opts.explain)
	if err != nil {
		return err
	}
	if headers == nil {
		headers = map[string]string{}
	}
	headers[build.LocateHeader] = "1"
	// -q is the CLI's: the daemon sends the whole stream, so that a
	// failing step's output can still be shown.
	bo := client.ImageBuildOptions{
		Tags: opts.tags, Dockerfile: dockerfile, NoCache: opts.noCache,
		Remove: true, PullParent: opts.pull, Target: opts.target, NetworkMode: opts.network,
		BuildArgs: map[string]*string{}, Labels: map[string]string{},
		AuthConfigs: buildAuthConfigs(),
	}
	for _, a := range opts.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			if ev, set := os.LookupEnv(k); set {
				bo.BuildArgs[k] = &ev
			} else {
				bo.BuildArgs[k] = nil
			}
			continue
		}
		bo.BuildArgs[k] = &v
	}
	if opts.platform != "" {
		parts := strings.SplitN(opts.platform, "/", 3)
		if len(parts) < 2 {
			return fmt.Errorf("invalid --platform %q: want os/arch[/variant]", opts.platform)
		}
		p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		bo.Platforms = []ocispec.Platform{p}
	}
	for _, l := range opts.labels {
		k, v, _ := strings.Cut(l, "=")
		bo.Labels[k] = v
	}
	apiClient, err := buildClient(c, headers)
	if err != nil {
		return err
	}
	res, err := apiClient.ImageBuild(ctx, body, bo)
	if err != nil {
		// A daemon-side error (a Dockerfile that does not parse, say):
		// the message only, exit status 1, as docker prints it.
		return StatusError{Cause: err, StatusCode: 1}
	}
	defer res.Body.Close()
	var width int
	if c.Out().IsTerminal() {
		_, w := c.Out().GetTtySize()
		width = int(w)
	}
	view := newBuildView(mode, c.Out(), c.Err(), width)
	view.dockerfile = dfText
	view.start()
	if opts.dockerfile != "" {
		view.name = filepath.Base(opts.dockerfile)
	}
	var id string
	var loc *build.StepLocationDetail
	err = displayJSONMessages(res.Body, NewOutStream(view), func(raw json.RawMessage) {
		var aux struct {
			ID string
			build.StepLocation
		}
		if json.Unmarshal(raw, &aux) == nil {
			if aux.ID != "" {
				id = aux.ID
			}
			if aux.FailedStep != nil {
				loc = aux.FailedStep
			}
		}
	})
	view.finish(err != nil, loc)
	if err != nil {
		err = streamError(err)
		var se StatusError
		if !errors.As(err, &se) {
			err = StatusError{Cause: err, StatusCode: 1} // never the usage text
		}
		return err
	}
	if mode == progressQuiet && id != "" {
		fmt.Fprintln(c.Out(), id)
	}
	if opts.iidfile != "" && id != "" {
		if err := os.WriteFile(opts.iidfile, []byte(id), 0o644); err != nil {
			return fmt.Errorf("write image ID to %s: %w", opts.iidfile, err)
		}
	}
	return nil
}

// contextTar streams the context directory as a tar, leaving out what
// .dockerignore excludes. A Dockerfile outside the context is added under
// a name of its own; the returned name is the one to send.
func contextTar(dir, dockerfile string) (io.Reader, string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if !fi.IsDir() {
		return nil, "", fmt.Errorf("unable to prepare context: path %q is not a directory", dir)
	}
	name := "Dockerfile"
	var extra []byte
	if dockerfile != "" {
		abs, _ := filepath.Abs(dockerfile)
		absDir, _ := filepath.Abs(dir)
		if rel, err := filepath.Rel(absDir, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		} else {
			if extra, err = os.ReadFile(dockerfile); err != nil {
				return nil, "", fmt.Errorf("unable to read Dockerfile %s: %w", dockerfile, err)
			}
			name = ".dockerfile.berth"
		}
	}
	ignore, err := build.LoadIgnore(dir, name)
	if err != nil {
		return nil, "", err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "." {
				return nil
			}
			rel = filepath.ToSlash(rel)
			if ignore(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				link, _ = os.Readlink(p)
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return nil // sockets and the like are not sent
			}
			hdr.Name = rel
			if d.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if hdr.Typeflag == tar.TypeReg {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyN(tw, f, hdr.Size)
				f.Close()
				return err
			}
			return nil
		})
		if err == nil && extra != nil {
			if err = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(extra)), Typeflag: tar.TypeReg}); err == nil {
				_, err = tw.Write(extra)
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, name, nil
}

// runWhy is build --why: for each path, the .dockerignore rule that
// decides whether the context sends it.
func runWhy(c *Cli, opts buildOptions) error {
	if opts.context == "-" {
		return fmt.Errorf("--why needs a context directory, not -")
	}
	rules, err := build.ReadIgnoreRules(opts.context)
	if err != nil {
		return err
	}
	dockerfile := "Dockerfile"
	if opts.dockerfile != "" {
		abs, _ := filepath.Abs(opts.dockerfile)
		absDir, _ := filepath.Abs(opts.context)
		if rel, err := filepath.Rel(absDir, abs); err == nil && !strings.HasPrefix(rel, "..") {
			dockerfile = filepath.ToSlash(rel)
		}
	}
	for _, p := range opts.why {
		fmt.Fprintln(c.Out(), build.WhyIgnored(rules, dockerfile, p))
	}
	return nil
}

// isContextArchive tells a build context sent on stdin (a tar, or a
// gzip, bzip2, xz or zstd stream) from a Dockerfile, by its first bytes.
func isContextArchive(b []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(b, magic) {
			return true
		}
	}
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}
