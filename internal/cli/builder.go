package cli

import (
	"context"
	"fmt"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type builderPruneOptions struct {
	force, all  bool
	filter      *listOpts
	keepStorage string
}

// newBuilderCommand is `berth builder`, the build cache's verbs.
func newBuilderCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builder",
		Short: "Manage builds",
		Args:  requiresNoArgs,
	}
	cmd.AddCommand(newBuilderPruneCommand(c))
	return cmd
}

func newBuilderPruneCommand(c *Cli) *cobra.Command {
	opts := builderPruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuilderPrune(cmdContext(cmd), c, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.all, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	f.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	f.Var(opts.filter, "filter", "Provide filter values (e.g. \"until=24h\")")
	f.StringVar(&opts.keepStorage, "keep-storage", "", "Amount of disk space to keep for cache")
	f.StringVar(&opts.keepStorage, "max-used-space", "", "Maximum amount of disk space allowed to keep for cache")
	return cmd
}

const (
	builderPruneWarning    = "WARNING! This will remove all dangling build cache."
	builderPruneAllWarning = "WARNING! This will remove all build cache."
)

func runBuilderPrune(ctx context.Context, c *Cli, opts builderPruneOptions) error {
	var keep int64
	if opts.keepStorage != "" {
		n, err := units.RAMInBytes(opts.keepStorage)
		if err != nil {
			return fmt.Errorf("invalid --keep-storage %q: %w", opts.keepStorage, err)
		}
		keep = n
	}
	warning := builderPruneWarning
	if opts.all {
		warning = builderPruneAllWarning
	}
	if !opts.force && !confirm(c, warning) {
		return nil
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: opts.all, MaxUsedSpace: keep,
		Filters: filtersFrom(opts.filter.values)})
	if err != nil {
		return err
	}
	if len(res.Report.CachesDeleted) > 0 {
		fmt.Fprintln(c.Out(), "Deleted build cache objects:")
		for _, id := range res.Report.CachesDeleted {
			fmt.Fprintln(c.Out(), id)
		}
		fmt.Fprintln(c.Out())
	}
	fmt.Fprintf(c.Out(), "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
	return nil
}
