package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- images / image ls ----

type imagesOptions struct {
	matchName string
	quiet     bool
	all       bool
	noTrunc   bool
	digests   bool
	format    string
	filter    *listOpts
}

func newImagesCommand(c *Cli) *cobra.Command {
	cmd := newImageListCommand(c)
	cmd.Use = "images [OPTIONS] [REPOSITORY[:TAG]]"
	cmd.Aliases = nil
	return cmd
}

func newImageListCommand(c *Cli) *cobra.Command {
	opts := imagesOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    requiresRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.matchName = args[0]
			}
			return runImages(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all images (default hides intermediate images)")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.BoolVar(&opts.digests, "digests", false, "Show digests")
	flags.StringVar(&opts.format, "format", "", "Format output using a custom template")
	flags.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func runImages(ctx context.Context, c *Cli, opts *imagesOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	filters := filtersFrom(opts.filter.values)
	if opts.matchName != "" {
		filters.Add("reference", opts.matchName)
	}
	res, err := apiClient.ImageList(ctx, client.ImageListOptions{All: opts.all, Filters: filters})
	if err != nil {
		return err
	}
	return writeImages(c.Out(), opts, res.Items)
}

func writeImages(out io.Writer, opts *imagesOptions, items []image.Summary) error {
	table := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if opts.digests {
		table = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	format := listFormat(opts.format, opts.quiet, "{{.ID}}", table)
	var rows []*imageContext
	for _, img := range items {
		rows = append(rows, imageRows(img, !opts.noTrunc, opts.digests)...)
	}
	return writeList(out, format, imageHeader, rows)
}

var imageHeader = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
	"VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}

func isDangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// imageRows expands one image into a row per repository:tag (and per
// digest with --digests), like docker images.
func imageRows(img image.Summary, trunc, digests bool) []*imageContext {
	if isDangling(img) {
		return []*imageContext{{trunc: trunc, i: img, repo: "<none>", tag: "<none>", digest: "<none>"}}
	}
	repoTags := map[string][]string{}
	repoDigests := map[string][]string{}
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if nt, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			repoTags[name] = append(repoTags[name], nt.Tag())
		}
	}
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if cn, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			repoDigests[name] = append(repoDigests[name], cn.Digest().String())
		}
	}
	var rows []*imageContext
	add := func(repo, tag, dgst string) {
		rows = append(rows, &imageContext{trunc: trunc, i: img, repo: repo, tag: tag, digest: dgst})
	}
	for _, repo := range sortedKeys(repoTags) {
		ds := repoDigests[repo]
		delete(repoDigests, repo)
		if !digests {
			ds = nil
		}
		for _, tag := range repoTags[repo] {
			if len(ds) == 0 {
				add(repo, tag, "<none>")
				continue
			}
			for _, d := range ds {
				add(repo, tag, d)
			}
		}
	}
	for _, repo := range sortedKeys(repoDigests) {
		if digests {
			for _, d := range repoDigests[repo] {
				add(repo, "<none>", d)
			}
		} else {
			add(repo, "<none>", "")
		}
	}
	return rows
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// imageContext is what an images template sees as ".".
type imageContext struct {
	trunc             bool
	i                 image.Summary
	repo, tag, digest string
}

func (x *imageContext) MarshalJSON() ([]byte, error) { return marshalContext(x) }

func (x *imageContext) ID() string {
	if x.trunc {
		return truncateID(x.i.ID)
	}
	return x.i.ID
}
func (x *imageContext) Repository() string   { return x.repo }
func (x *imageContext) Tag() string          { return x.tag }
func (x *imageContext) Digest() string       { return x.digest }
func (x *imageContext) CreatedSince() string { return humanAgo(x.i.Created) }
func (x *imageContext) CreatedAt() string    { return time.Unix(x.i.Created, 0).String() }
func (x *imageContext) Size() string         { return humanSize(x.i.Size) }
func (x *imageContext) VirtualSize() string  { return units.HumanSize(float64(x.i.Size)) }

func (x *imageContext) Containers() string {
	if x.i.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(x.i.Containers, 10)
}

func (x *imageContext) SharedSize() string {
	if x.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(x.i.SharedSize))
}

func (x *imageContext) UniqueSize() string {
	if x.i.Size == -1 || x.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(x.i.Size - x.i.SharedSize))
}

// ---- rmi / image rm ----

type rmiOptions struct {
	force, noPrune bool
	images         []string
}

func newRmiCommand(c *Cli) *cobra.Command {
	cmd := newImageRmCommand(c)
	cmd.Use = "rmi [OPTIONS] IMAGE [IMAGE...]"
	cmd.Aliases = nil
	return cmd
}

func newImageRmCommand(c *Cli) *cobra.Command {
	var opts rmiOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] IMAGE [IMAGE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more images",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.images = args
			return runRmi(cmdContext(cmd), c, &opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&opts.noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func runRmi(ctx context.Context, c *Cli, opts *rmiOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	var errs []string
	for _, img := range opts.images {
		res, err := apiClient.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: opts.force, PruneChildren: !opts.noPrune})
		if err != nil {
			errs = append(errs, errText(err))
			continue
		}
		for _, d := range res.Items {
			if d.Deleted != "" {
				fmt.Fprintf(c.Out(), "Deleted: %s\n", d.Deleted)
			} else {
				fmt.Fprintf(c.Out(), "Untagged: %s\n", d.Untagged)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// ---- history ----

type historyOptions struct {
	image   string
	human   bool
	quiet   bool
	noTrunc bool
	format  string
}

func newHistoryCommand(c *Cli) *cobra.Command {
	opts := historyOptions{}
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			return runHistory(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.human, "human", "H", true, "Print sizes and dates in human readable format")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.StringVar(&opts.format, "format", "", "Format output using a custom template")
	return cmd
}

func runHistory(ctx context.Context, c *Cli, opts *historyOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ImageHistory(ctx, opts.image)
	if err != nil {
		return err
	}
	format := listFormat(opts.format, opts.quiet, "{{.ID}}", "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
	rows := make([]*historyContext, len(res.Items))
	for i, h := range res.Items {
		rows[i] = &historyContext{h: h, trunc: !opts.noTrunc, human: opts.human}
	}
	return writeList(c.Out(), format, historyHeader, rows)
}

var historyHeader = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

type historyContext struct {
	h            image.HistoryResponseItem
	trunc, human bool
}

func (x *historyContext) MarshalJSON() ([]byte, error) { return marshalContext(x) }

func (x *historyContext) ID() string {
	if x.trunc && x.h.ID != "<missing>" {
		return truncateID(x.h.ID)
	}
	return x.h.ID
}

func (x *historyContext) CreatedAt() string {
	return time.Unix(x.h.Created, 0).Format(time.RFC3339)
}

func (x *historyContext) CreatedSince() string {
	if !x.human {
		return x.CreatedAt()
	}
	return humanAgo(x.h.Created)
}

func (x *historyContext) CreatedBy() string {
	s := strings.ReplaceAll(x.h.CreatedBy, "\t", " ")
	if x.trunc {
		s = ellipsis(s, 45)
	}
	return s
}

func (x *historyContext) Size() string {
	if x.human {
		return humanSize(x.h.Size)
	}
	return strconv.FormatInt(x.h.Size, 10)
}

func (x *historyContext) Comment() string { return x.h.Comment }

// ---- tag ----

func newTagCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  requiresExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTag(cmdContext(cmd), c, args[0], args[1])
		},
	}
}

func runTag(ctx context.Context, c *Cli, source, target string) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	_, err = apiClient.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target})
	return err
}

// ---- save ----

func newSaveCommand(c *Cli) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSave(cmdContext(cmd), c, args, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func runSave(ctx context.Context, c *Cli, images []string, output string) error {
	if output == "" && c.Out().IsTerminal() {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	if output != "" {
		if dir := filepath.Dir(output); dir != "" {
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return fmt.Errorf("failed to save image: invalid output path: directory %q does not exist", dir)
			}
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	body, err := apiClient.ImageSave(ctx, images)
	if err != nil {
		return err
	}
	defer body.Close()
	if output == "" {
		_, err := io.Copy(c.Out(), body)
		return err
	}
	return copyToFile(output, body)
}

// copyToFile writes r to path through a temporary file in the same
// directory, so that a failed save leaves no partial archive behind.
func copyToFile(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth_temp_")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name)
	}
	return err
}

// ---- load ----

func newLoadCommand(c *Cli) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmdContext(cmd), c, input, quiet)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func runLoad(ctx context.Context, c *Cli, input string, quiet bool) error {
	var in io.Reader = c.In()
	if input != "" {
		f, err := os.Open(input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if c.In().IsTerminal() {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	if !c.Out().IsTerminal() {
		quiet = true
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	body, err := apiClient.ImageLoad(ctx, in, client.ImageLoadWithQuiet(quiet))
	if err != nil {
		return err
	}
	defer body.Close()
	return streamError(displayJSONMessages(body, c.Out(), nil))
}

// streamError turns an in-stream error into the exit status it carries.
func streamError(err error) error {
	var je *jsonError
	if errors.As(err, &je) && je.Code != 0 {
		return StatusError{Status: je.Message, StatusCode: je.Code}
	}
	return err
}

// ---- import ----

type importOptions struct {
	source, reference, message, platform string
	changes                              *listOpts
}

func newImportCommand(c *Cli) *cobra.Command {
	opts := importOptions{changes: newListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.source = args[0]
			if len(args) > 1 {
				opts.reference = args[1]
			}
			return runImport(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.VarP(opts.changes, "change", "c", "Apply Dockerfile instruction to the created image")
	flags.StringVarP(&opts.message, "message", "m", "", "Set commit message for imported image")
	flags.StringVar(&opts.platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func runImport(ctx context.Context, c *Cli, opts *importOptions) error {
	var src client.ImageImportSource
	switch {
	case opts.source == "-":
		src = client.ImageImportSource{Source: c.In(), SourceName: "-"}
	case strings.HasPrefix(opts.source, "http://") || strings.HasPrefix(opts.source, "https://"):
		src = client.ImageImportSource{SourceName: opts.source}
	default:
		f, err := os.Open(opts.source)
		if err != nil {
			return err
		}
		defer f.Close()
		src = client.ImageImportSource{Source: f, SourceName: "-"}
	}
	iopts := client.ImageImportOptions{Message: opts.message, Changes: opts.changes.values}
	if p, err := parsePlatform(opts.platform); err != nil {
		return err
	} else if p != nil {
		iopts.Platform = *p
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	body, err := apiClient.ImageImport(ctx, src, opts.reference, iopts)
	if err != nil {
		return err
	}
	defer body.Close()
	return streamError(displayJSONMessages(body, c.Out(), nil))
}

// ---- pull ----

type pullOptions struct {
	remote   string
	all      bool
	quiet    bool
	platform string
}

func newPullCommand(c *Cli) *cobra.Command {
	var opts pullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.remote = args[0]
			return runPull(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all-tags", "a", false, "Download all tagged images in the repository")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress verbose output")
	flags.StringVar(&opts.platform, "platform", os.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return cmd
}

func runPull(ctx context.Context, c *Cli, opts *pullOptions) error {
	named, err := remoteRef(c, opts.remote, opts.all, opts.quiet)
	if err != nil {
		return err
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	if err := pullWithSummary(ctx, c, apiClient, reference.FamiliarString(named), opts.platform, opts.quiet); err != nil {
		return streamError(err)
	}
	fmt.Fprintln(c.Out(), named.String())
	return nil
}

// remoteRef parses a pull/push reference as docker does: with -a it must
// name a repository only; without, a missing tag becomes "latest" (said
// unless quiet).
func remoteRef(c *Cli, remote string, all, quiet bool) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(remote)
	if err != nil {
		return nil, err
	}
	if all && !reference.IsNameOnly(named) {
		return nil, errors.New("tag can't be used with --all-tags/-a")
	}
	if !all && reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
		if t, ok := named.(reference.Tagged); ok && !quiet {
			fmt.Fprintf(c.Out(), "Using default tag: %s\n", t.Tag())
		}
	}
	return named, nil
}
