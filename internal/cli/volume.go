package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newVolumeCommand is `berth volume`: create, ls, inspect, rm, prune.
func newVolumeCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: requiresNoArgs, RunE: showHelp}
	cmd.AddCommand(newVolumeCreateCommand(c), newVolumeListCommand(c), newVolumeInspectCommand(c),
		newVolumeRemoveCommand(c), newVolumePruneCommand(c))
	return cmd
}

type volumeCreateOptions struct {
	name, driver string
	labels       *listOpts
	opts         *mapOpts
}

func newVolumeCreateCommand(c *Cli) *cobra.Command {
	o := volumeCreateOptions{labels: newListOpts(nil), opts: &mapOpts{}}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  requiresRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if o.name != "" {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				o.name = args[0]
			}
			return runVolumeCreate(cmdContext(cmd), c, &o)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&o.driver, "driver", "d", "local", "Specify volume driver name")
	flags.StringVar(&o.name, "name", "", "Specify volume name")
	flags.MarkHidden("name")
	flags.VarP(o.opts, "opt", "o", "Set driver specific options")
	flags.Var(o.labels, "label", "Set metadata for a volume")
	return cmd
}

func runVolumeCreate(ctx context.Context, c *Cli, o *volumeCreateOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for _, l := range o.labels.GetAll() {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	res, err := apiClient.VolumeCreate(ctx, client.VolumeCreateOptions{Name: o.name, Driver: o.driver, DriverOpts: o.opts.values, Labels: labels})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.Out(), res.Volume.Name)
	return nil
}

type volumeListOptions struct {
	quiet  bool
	format string
	filter *listOpts
}

func newVolumeListCommand(c *Cli) *cobra.Command {
	o := volumeListOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVolumeList(cmdContext(cmd), c, &o)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Only display volume names")
	flags.StringVar(&o.format, "format", "", "Format output using a custom template")
	flags.VarP(o.filter, "filter", "f", "Provide filter values (e.g. \"dangling=true\")")
	return cmd
}

// volumeRow is the formatting context of `volume ls`.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) CreatedAt() string  { return r.v.CreatedAt }

// Labels renders k=v pairs joined by commas, as docker does.
func (r volumeRow) Labels() string {
	var out []string
	for k, v := range r.v.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Label returns one label's value.
func (r volumeRow) Label(name string) string { return r.v.Labels[name] }

// Size is the usage size, or N/A when the daemon didn't compute it.
func (r volumeRow) Size() string {
	if r.v.UsageData == nil || r.v.UsageData.Size < 0 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.v.UsageData.Size), 3)
}

// Links is the number of containers using the volume.
func (r volumeRow) Links() string {
	if r.v.UsageData == nil || r.v.UsageData.RefCount < 0 {
		return "N/A"
	}
	return fmt.Sprint(r.v.UsageData.RefCount)
}

// MarshalJSON serves {{json .}}.
func (r volumeRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "Mountpoint": r.Mountpoint(),
		"Labels": r.Labels(), "Links": r.Links(), "Size": r.Size(), "Availability": "N/A", "Group": "N/A", "Status": "N/A",
	})
}

var volumeHeader = map[string]string{
	"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
	"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED",
}

func runVolumeList(ctx context.Context, c *Cli, o *volumeListOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.VolumeList(ctx, client.VolumeListOptions{Filters: filtersFrom(o.filter.values)})
	if err != nil {
		return err
	}
	items := res.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	format := listFormat(o.format, o.quiet, "{{.Name}}", "table {{.Driver}}\t{{.Name}}")
	rows := make([]volumeRow, len(items))
	for i, v := range items {
		rows[i] = volumeRow{v}
	}
	return writeList(c.Out(), format, volumeHeader, rows)
}

func newVolumeInspectCommand(c *Cli) *cobra.Command {
	return newKindInspectCommand(c, &inspectOptions{kind: "volume"})
}

func newVolumeRemoveCommand(c *Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			apiClient, err := c.Client()
			if err != nil {
				return err
			}
			errs := make([]error, len(args))
			for i, name := range args {
				_, errs[i] = apiClient.VolumeRemove(cmdContext(cmd), name, client.VolumeRemoveOptions{Force: force})
			}
			return reportEach(c.Out(), args, errs, nil)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(c *Cli) *cobra.Command {
	o := pruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVolumePrune(cmdContext(cmd), c, &o)
		},
	}
	cmd.Flags().BoolVarP(&o.all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(o.filter, "filter", "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}

func runVolumePrune(ctx context.Context, c *Cli, o *pruneOptions) error {
	warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
	if o.all {
		warning = "WARNING! This will remove all local volumes not used by at least one container."
	}
	if !o.force && !confirm(c, warning) {
		return nil
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.VolumePrune(ctx, client.VolumePruneOptions{All: o.all, Filters: filtersFrom(o.filter.values)})
	if err != nil {
		return err
	}
	writeVolumePrune(c.Out(), res.Report)
	fmt.Fprintf(c.Out(), "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
	return nil
}
