package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

type psOptions struct {
	quiet       bool
	size        bool
	sizeChanged bool
	all         bool
	noTrunc     bool
	latest      bool
	last        int
	format      string
	filter      *listOpts
}

func newPsCommand(c *Cli) *cobra.Command {
	opts := psOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"list", "ls"},
		Short:   "List containers",
		Args:    requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.sizeChanged = cmd.Flags().Changed("size")
			return runPs(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display container IDs")
	flags.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes")
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all containers (default shows just running)")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.BoolVarP(&opts.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	flags.IntVarP(&opts.last, "last", "n", -1, "Show n last created containers (includes all states)")
	flags.StringVar(&opts.format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	flags.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// validateFilter checks the name=value form of -f.
func validateFilter(v string) (string, error) {
	if !strings.Contains(v, "=") {
		return "", errors.New("bad format of filter (expected name=value)")
	}
	return v, nil
}

// filtersFrom turns -f values into the API's filters map.
func filtersFrom(values []string) client.Filters {
	f := client.Filters{}
	for _, v := range values {
		k, val, _ := strings.Cut(v, "=")
		f.Add(strings.ToLower(strings.TrimSpace(k)), val)
	}
	return f
}

// psListOptions builds the list request from the flags.
func psListOptions(opts *psOptions) client.ContainerListOptions {
	lo := client.ContainerListOptions{
		All:     opts.all,
		Limit:   opts.last,
		Size:    opts.size,
		Filters: filtersFrom(opts.filter.values),
	}
	if opts.latest && opts.last == -1 {
		lo.Limit = 1
	}
	// A template that shows .Size needs sizes from the daemon.
	if opts.format != "" && !opts.sizeChanged && !opts.quiet && strings.Contains(opts.format, ".Size") {
		lo.Size = true
	}
	return lo
}

func runPs(ctx context.Context, c *Cli, opts *psOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerList(ctx, psListOptions(opts))
	if err != nil {
		return err
	}
	return writeContainers(c.Out(), opts, res.Items)
}

// writeContainers renders a container list like `docker ps`.
func writeContainers(out io.Writer, opts *psOptions, items []container.Summary) error {
	format := opts.format
	switch {
	case format == "" || format == tableFormatKey:
		format = defaultPsFormat
		if opts.quiet {
			format = "{{.ID}}"
		} else if opts.size {
			format += "\t{{.Size}}"
		}
	case format == "json":
		format = "{{json .}}"
	case opts.quiet:
		format = "{{.ID}}"
	}
	rows := make([]*containerContext, len(items))
	for i := range items {
		rows[i] = &containerContext{trunc: !opts.noTrunc, c: items[i]}
	}
	return writeList(out, format, containerHeader, rows)
}

var containerHeader = map[string]string{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
	"CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
	"Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
	"LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}

// containerContext is what a ps template sees as ".".
type containerContext struct {
	trunc bool
	c     container.Summary
}

func (x *containerContext) MarshalJSON() ([]byte, error) { return marshalContext(x, "Label") }

func (x *containerContext) ID() string {
	if x.trunc {
		return truncateID(x.c.ID)
	}
	return x.c.ID
}

// Names strips the leading "/" of each name (the daemon always sends one:
// the CLI cuts the first character unconditionally, like docker).
func (x *containerContext) Names() string {
	var names []string
	for _, n := range x.c.Names {
		if len(n) > 0 {
			n = n[1:]
		}
		if x.trunc {
			if !strings.Contains(n, "/") {
				return n
			}
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (x *containerContext) Image() string {
	if x.c.Image == "" {
		return "<no image>"
	}
	if x.trunc {
		if t := truncateID(x.c.ImageID); t != "" && t == truncateID(x.c.Image) {
			return t
		}
		if i := strings.Index(x.c.Image, "@sha256:"); i > 0 {
			return x.c.Image[:i]
		}
	}
	return x.c.Image
}

func (x *containerContext) Command() string {
	cmd := x.c.Command
	if x.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (x *containerContext) CreatedAt() string { return time.Unix(x.c.Created, 0).String() }
func (x *containerContext) RunningFor() string {
	return humanAgo(x.c.Created)
}
func (x *containerContext) Ports() string  { return displayablePorts(x.c.Ports) }
func (x *containerContext) State() string  { return string(x.c.State) }
func (x *containerContext) Status() string { return x.c.Status }

func (x *containerContext) Size() string {
	s := humanSize(x.c.SizeRw)
	if x.c.SizeRootFs > 0 {
		s = fmt.Sprintf("%s (virtual %s)", s, humanSize(x.c.SizeRootFs))
	}
	return s
}

func (x *containerContext) Labels() string {
	out := make([]string, 0, len(x.c.Labels))
	for k, v := range x.c.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (x *containerContext) Label(name string) string { return x.c.Labels[name] }

func (x *containerContext) Mounts() string {
	var out []string
	for _, m := range x.c.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if x.trunc {
			name = ellipsis(name, 15)
		}
		out = append(out, name)
	}
	return strings.Join(out, ",")
}

func (x *containerContext) LocalVolumes() string {
	n := 0
	for _, m := range x.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (x *containerContext) Networks() string {
	if x.c.NetworkSettings == nil {
		return ""
	}
	var out []string
	for k := range x.c.NetworkSettings.Networks {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// displayablePorts renders ports like docker ps: consecutive unpublished
// ports collapse into ranges ("80-81/tcp"); published ones show
// "IP:public->private/proto".
func displayablePorts(ports []container.PortSummary) string {
	ps := append([]container.PortSummary(nil), ports...)
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.Less(b.IP)
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var order, result, mapped []string
	for _, p := range ps {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				host := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", host, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		if g == nil {
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			order = append(order, key)
			continue
		}
		if p.PrivatePort == g.last+1 {
			g.last = p.PrivatePort
			continue
		}
		result = append(result, formatPortGroup(key, g.first, g.last))
		groups[key] = &group{p.PrivatePort, p.PrivatePort}
	}
	for _, k := range order {
		g := groups[k]
		result = append(result, formatPortGroup(k, g.first, g.last))
	}
	return strings.Join(append(result, mapped...), ", ")
}

func formatPortGroup(key string, first, last uint16) string {
	ip, proto, hasIP := strings.Cut(key, "/")
	if !hasIP {
		proto, ip = key, ""
	}
	rng := strconv.Itoa(int(first))
	if first != last {
		rng += "-" + strconv.Itoa(int(last))
	}
	if ip != "" {
		rng = net.JoinHostPort(ip, rng) + "->" + rng
	}
	return rng + "/" + proto
}
