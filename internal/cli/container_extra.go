package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- diff ----

func newDiffCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmdContext(cmd), c, args[0])
		},
	}
}

func runDiff(ctx context.Context, c *Cli, name string) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerDiff(ctx, name, client.ContainerDiffOptions{})
	if err != nil {
		return err
	}
	for _, ch := range res.Changes {
		kind := "C"
		switch ch.Kind {
		case container.ChangeAdd:
			kind = "A"
		case container.ChangeDelete:
			kind = "D"
		}
		fmt.Fprintf(c.Out(), "%s %s\n", kind, ch.Path)
	}
	return nil
}

// ---- export ----

func newExportCommand(c *Cli) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmdContext(cmd), c, args[0], output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func runExport(ctx context.Context, c *Cli, name, output string) error {
	if output == "" && c.Out().IsTerminal() {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	body, err := apiClient.ContainerExport(ctx, name, client.ContainerExportOptions{})
	if err != nil {
		return err
	}
	defer body.Close()
	if output == "" {
		_, err = io.Copy(c.Out(), body)
		return err
	}
	return copyToFile(output, body)
}

// ---- commit ----

type commitOptions struct {
	container, reference, author, message string
	pause                                 bool
	changes                               *listOpts
}

func newCommitCommand(c *Cli) *cobra.Command {
	opts := commitOptions{changes: newListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			if len(args) > 1 {
				opts.reference = args[1]
			}
			return runCommit(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.BoolVarP(&opts.pause, "pause", "p", true, "Pause container during commit")
	flags.StringVarP(&opts.message, "message", "m", "", "Commit message")
	flags.StringVarP(&opts.author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	flags.VarP(opts.changes, "change", "c", "Apply Dockerfile instruction to the created image")
	return cmd
}

func runCommit(ctx context.Context, c *Cli, opts *commitOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerCommit(ctx, opts.container, client.ContainerCommitOptions{
		Reference: opts.reference,
		Comment:   opts.message,
		Author:    opts.author,
		Changes:   opts.changes.values,
		NoPause:   !opts.pause,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.Out(), res.ID)
	return nil
}

// ---- system df ----

type dfOptions struct {
	verbose bool
	format  string
}

func newDfCommand(c *Cli) *cobra.Command {
	var opts dfOptions
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show docker disk usage",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDf(cmdContext(cmd), c, &opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.verbose, "verbose", "v", false, "Show detailed information on space usage")
	cmd.Flags().StringVar(&opts.format, "format", "", "Format output using a custom template")
	return cmd
}

// dfRow is one line of the `system df` summary.
type dfRow struct {
	kind              string
	total, active     int64
	size, reclaimable int64
	percent           bool
}

func (r dfRow) MarshalJSON() ([]byte, error) { return marshalContext(r) }
func (r dfRow) Type() string                 { return r.kind }
func (r dfRow) TotalCount() string           { return strconv.FormatInt(r.total, 10) }
func (r dfRow) Active() string               { return strconv.FormatInt(r.active, 10) }
func (r dfRow) Size() string                 { return units.HumanSize(float64(r.size)) }
func (r dfRow) Reclaimable() string {
	s := units.HumanSize(float64(r.reclaimable))
	if r.percent && r.size > 0 {
		s += fmt.Sprintf(" (%v%%)", r.reclaimable*100/r.size)
	}
	return s
}

var dfHeader = map[string]string{
	"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
}

func runDf(ctx context.Context, c *Cli, opts *dfOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	du, err := apiClient.DiskUsage(ctx, client.DiskUsageOptions{
		Containers: true, Images: true, BuildCache: true, Volumes: true, Verbose: opts.verbose,
	})
	if err != nil {
		return err
	}
	if opts.verbose {
		return writeDfVerbose(c, &du)
	}
	rows := []dfRow{
		{"Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable, true},
		{"Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable, true},
		{"Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable, true},
		{"Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable, false},
	}
	format := opts.format
	switch format {
	case "", tableFormatKey:
		format = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
	case "json":
		format = "{{json .}}"
	}
	return writeList(c.Out(), format, dfHeader, rows)
}

func writeDfVerbose(c *Cli, du *client.DiskUsageResult) error {
	out := c.Out()
	fmt.Fprintf(out, "Images space usage:\n\n")
	var imgs []*imageContext
	for _, img := range du.Images.Items {
		imgs = append(imgs, imageRows(img, true, false)...)
	}
	if err := writeList(out, "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}", imageHeader, imgs); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nContainers space usage:\n\n")
	var cts []*containerContext
	for i := range du.Containers.Items {
		cts = append(cts, &containerContext{trunc: true, c: du.Containers.Items[i]})
	}
	if err := writeList(out, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}", containerHeader, cts); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nLocal Volumes space usage:\n\n")
	vols := make([]volumeDfRow, len(du.Volumes.Items))
	for i, v := range du.Volumes.Items {
		vols[i] = volumeDfRow{v}
	}
	if err := writeList(out, "table {{.Name}}\t{{.Links}}\t{{.Size}}", map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}, vols); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nBuild cache usage: %s\n\n", units.HumanSize(float64(du.BuildCache.TotalSize)))
	return nil
}

type volumeDfRow struct{ v volume.Volume }

func (r volumeDfRow) Name() string { return r.v.Name }
func (r volumeDfRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}
func (r volumeDfRow) Size() string {
	if r.v.UsageData == nil || r.v.UsageData.Size < 0 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.v.UsageData.Size), 3)
}
