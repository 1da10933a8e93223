package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type pruneOptions struct {
	force, all, volumes bool
	filter              *listOpts
}

// confirm asks the docker-style [y/N] question on stdin.
func confirm(c *Cli, message string) bool {
	fmt.Fprintf(c.Out(), "%s\nAre you sure you want to continue? [y/N] ", message)
	line, _ := bufio.NewReader(c.In()).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// ---- container prune ----

func newContainerPruneCommand(c *Cli) *cobra.Command {
	opts := pruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainerPrune(cmdContext(cmd), c, &opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(opts.filter, "filter", "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

const containerPruneWarning = "WARNING! This will remove all stopped containers."

func runContainerPrune(ctx context.Context, c *Cli, opts *pruneOptions) error {
	if !opts.force && !confirm(c, containerPruneWarning) {
		return nil
	}
	report, err := pruneContainers(ctx, c, opts)
	if err != nil {
		return err
	}
	writeContainerPrune(c.Out(), report)
	fmt.Fprintf(c.Out(), "Total reclaimed space: %s\n", units.HumanSize(float64(report.SpaceReclaimed)))
	return nil
}

func pruneContainers(ctx context.Context, c *Cli, opts *pruneOptions) (container.PruneReport, error) {
	apiClient, err := c.Client()
	if err != nil {
		return container.PruneReport{}, err
	}
	res, err := apiClient.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filtersFrom(opts.filter.values)})
	return res.Report, err
}

func writeContainerPrune(out io.Writer, r container.PruneReport) {
	if len(r.ContainersDeleted) == 0 {
		return
	}
	fmt.Fprintln(out, "Deleted Containers:")
	for _, id := range r.ContainersDeleted {
		fmt.Fprintln(out, id)
	}
	fmt.Fprintln(out)
}

// ---- image prune ----

func newImagePruneCommand(c *Cli) *cobra.Command {
	opts := pruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagePrune(cmdContext(cmd), c, &opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(opts.filter, "filter", "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func runImagePrune(ctx context.Context, c *Cli, opts *pruneOptions) error {
	warning := "WARNING! This will remove all dangling images."
	if opts.all {
		warning = "WARNING! This will remove all images without at least one container associated to them."
	}
	if !opts.force && !confirm(c, warning) {
		return nil
	}
	report, err := pruneImages(ctx, c, opts)
	if err != nil {
		return err
	}
	writeImagePrune(c.Out(), report)
	fmt.Fprintf(c.Out(), "Total reclaimed space: %s\n", units.HumanSize(float64(report.SpaceReclaimed)))
	return nil
}

func pruneImages(ctx context.Context, c *Cli, opts *pruneOptions) (image.PruneReport, error) {
	apiClient, err := c.Client()
	if err != nil {
		return image.PruneReport{}, err
	}
	f := filtersFrom(opts.filter.values)
	if opts.all {
		f.Add("dangling", "false")
	} else {
		f.Add("dangling", "true")
	}
	res, err := apiClient.ImagePrune(ctx, client.ImagePruneOptions{Filters: f})
	return res.Report, err
}

func writeImagePrune(out io.Writer, r image.PruneReport) {
	if len(r.ImagesDeleted) == 0 {
		return
	}
	fmt.Fprintln(out, "Deleted Images:")
	for _, d := range r.ImagesDeleted {
		if d.Untagged != "" {
			fmt.Fprintln(out, "untagged:", d.Untagged)
		} else {
			fmt.Fprintln(out, "deleted:", d.Deleted)
		}
	}
	fmt.Fprintln(out)
}

// ---- system prune ----

func newSystemPruneCommand(c *Cli) *cobra.Command {
	opts := pruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSystemPrune(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Remove all unused images not just dangling ones")
	flags.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	flags.BoolVar(&opts.volumes, "volumes", false, "Prune anonymous volumes")
	flags.Var(opts.filter, "filter", "Provide filter values (e.g. \"label=<key>=<value>\")")
	return cmd
}

func runSystemPrune(ctx context.Context, c *Cli, opts *pruneOptions) error {
	if !opts.force {
		items := []string{"all stopped containers", "all networks not used by at least one container"}
		if opts.volumes {
			items = append(items, "all anonymous volumes not used by at least one container")
		}
		if opts.all {
			items = append(items, "all images without at least one container associated to them", "all build cache")
		} else {
			items = append(items, "all dangling images", "unused build cache")
		}
		msg := "WARNING! This will remove:\n  - " + strings.Join(items, "\n  - ") + "\n"
		if !confirm(c, msg) {
			return nil
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	var space uint64
	cr, err := pruneContainers(ctx, c, opts)
	if err != nil {
		return err
	}
	writeContainerPrune(c.Out(), cr)
	space += cr.SpaceReclaimed

	// Networks and the build cache may not exist on this daemon yet: a
	// 404/501 there is not a failure of the whole prune.
	if nr, err := apiClient.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filtersFrom(opts.filter.values)}); err == nil {
		if len(nr.Report.NetworksDeleted) > 0 {
			fmt.Fprintln(c.Out(), "Deleted Networks:")
			for _, n := range nr.Report.NetworksDeleted {
				fmt.Fprintln(c.Out(), n)
			}
			fmt.Fprintln(c.Out())
		}
	} else if !optionalFeature(err) {
		return err
	}
	if opts.volumes {
		vf := filtersFrom(opts.filter.values)
		vr, err := apiClient.VolumePrune(ctx, client.VolumePruneOptions{Filters: vf})
		if err == nil {
			writeVolumePrune(c.Out(), vr.Report)
			space += vr.Report.SpaceReclaimed
		} else if !optionalFeature(err) {
			return err
		}
	}
	ir, err := pruneImages(ctx, c, opts)
	if err != nil {
		return err
	}
	writeImagePrune(c.Out(), ir)
	space += ir.SpaceReclaimed
	if br, err := apiClient.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: opts.all, Filters: filtersFrom(opts.filter.values)}); err == nil {
		if len(br.Report.CachesDeleted) > 0 {
			fmt.Fprintln(c.Out(), "Deleted build cache objects:")
			for _, id := range br.Report.CachesDeleted {
				fmt.Fprintln(c.Out(), id)
			}
			fmt.Fprintln(c.Out())
		}
		space += br.Report.SpaceReclaimed
	} else if !optionalFeature(err) {
		return err
	}
	fmt.Fprintf(c.Out(), "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
	return nil
}

func writeVolumePrune(out io.Writer, r volume.PruneReport) {
	if len(r.VolumesDeleted) == 0 {
		return
	}
	fmt.Fprintln(out, "Deleted Volumes:")
	for _, v := range r.VolumesDeleted {
		fmt.Fprintln(out, v)
	}
	fmt.Fprintln(out)
}

// optionalFeature reports errors that mean "this daemon has no such
// endpoint" rather than a real failure.
func optionalFeature(err error) bool {
	return cerrdefs.IsNotFound(err) || cerrdefs.IsNotImplemented(err)
}
