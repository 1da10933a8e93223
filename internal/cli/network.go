package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newNetworkCommand is `berth network`: create, ls, inspect, rm, prune,
// connect, disconnect.
func newNetworkCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: requiresNoArgs, RunE: showHelp}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkListCommand(c), newNetworkInspectCommand(c),
		newNetworkRemoveCommand(c), newNetworkPruneCommand(c), newNetworkConnectCommand(c), newNetworkDisconnectCommand(c))
	return cmd
}

type networkCreateOptions struct {
	driver                    string
	subnets, gateways, ranges []string
	aux                       []string
	internal, attachable      bool
	ipv6                      bool
	labels                    *listOpts
	opts                      *mapOpts
}

func newNetworkCreateCommand(c *Cli) *cobra.Command {
	o := networkCreateOptions{labels: newListOpts(nil), opts: &mapOpts{}}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkCreate(cmdContext(cmd), c, args[0], &o)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	flags.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	flags.StringSliceVar(&o.gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	flags.StringSliceVar(&o.ranges, "ip-range", nil, "Allocate container ip from a sub-range")
	flags.StringArrayVar(&o.aux, "aux-address", nil, "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	flags.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 networking")
	flags.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	flags.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	flags.VarP(o.opts, "opt", "o", "Set driver specific options")
	flags.Var(o.labels, "label", "Set metadata on a network")
	return cmd
}

func runNetworkCreate(ctx context.Context, c *Cli, name string, o *networkCreateOptions) error {
	cfgs, err := ipamConfigs(o.subnets, o.gateways, o.ranges, o.aux)
	if err != nil {
		return err
	}
	var ipam *network.IPAM
	if len(cfgs) > 0 {
		ipam = &network.IPAM{Driver: "default", Config: cfgs}
	}
	labels := map[string]string{}
	for _, l := range o.labels.GetAll() {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: o.driver, IPAM: ipam, Internal: o.internal, Attachable: o.attachable, EnableIPv6: &o.ipv6,
		Options: o.opts.values, Labels: labels,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.Out(), res.ID)
	return nil
}

// ipamConfigs pairs each gateway, ip-range and auxiliary address
// (name=ip) with the subnet that contains it, as docker does.
func ipamConfigs(subnets, gateways, ranges, aux []string) ([]network.IPAMConfig, error) {
	var cfgs []network.IPAMConfig
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet %s: %w", s, err)
		}
		cfgs = append(cfgs, network.IPAMConfig{Subnet: p})
	}
	place := func(what, s string, set func(*network.IPAMConfig, netip.Addr, netip.Prefix) bool) error {
		var a netip.Addr
		var p netip.Prefix
		var err error
		if what != "ip-range" {
			a, err = netip.ParseAddr(s)
		} else {
			p, err = netip.ParsePrefix(s)
			a = p.Addr()
		}
		if err != nil {
			return fmt.Errorf("invalid %s %s: %w", what, s, err)
		}
		for i := range cfgs {
			if cfgs[i].Subnet.Contains(a) {
				if !set(&cfgs[i], a, p) {
					return fmt.Errorf("cannot configure multiple %ss for the same subnet %s", what, cfgs[i].Subnet)
				}
				return nil
			}
		}
		return fmt.Errorf("no matching subnet for %s %s", what, s)
	}
	for _, g := range gateways {
		if err := place("gateway", g, func(c *network.IPAMConfig, a netip.Addr, _ netip.Prefix) bool {
			ok := !c.Gateway.IsValid()
			c.Gateway = a
			return ok
		}); err != nil {
			return nil, err
		}
	}
	for _, r := range ranges {
		if err := place("ip-range", r, func(c *network.IPAMConfig, _ netip.Addr, p netip.Prefix) bool {
			ok := !c.IPRange.IsValid()
			c.IPRange = p
			return ok
		}); err != nil {
			return nil, err
		}
	}
	for _, kv := range aux {
		name, ip, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid aux-address %q: expected name=ip", kv)
		}
		if err := place("aux-address", ip, func(c *network.IPAMConfig, a netip.Addr, _ netip.Prefix) bool {
			if c.AuxAddress == nil {
				c.AuxAddress = map[string]netip.Addr{}
			}
			c.AuxAddress[name] = a
			return true
		}); err != nil {
			return nil, err
		}
	}
	return cfgs, nil
}

type networkListOptions struct {
	quiet, noTrunc bool
	format         string
	filter         *listOpts
}

func newNetworkListCommand(c *Cli) *cobra.Command {
	o := networkListOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkList(cmdContext(cmd), c, &o)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Only display network IDs")
	flags.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate the output")
	flags.StringVar(&o.format, "format", "", "Format output using a custom template")
	flags.VarP(o.filter, "filter", "f", "Provide filter values (e.g. \"driver=bridge\")")
	return cmd
}

// networkRow is the formatting context of `network ls`.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r networkRow) ID() string {
	if r.trunc && len(r.n.ID) > 12 {
		return r.n.ID[:12]
	}
	return r.n.ID
}
func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return fmt.Sprint(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return fmt.Sprint(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return fmt.Sprint(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.String() }

// Labels renders k=v pairs joined by commas, as docker does.
func (r networkRow) Labels() string {
	var out []string
	for k, v := range r.n.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Label returns one label's value.
func (r networkRow) Label(name string) string { return r.n.Labels[name] }

// MarshalJSON serves {{json .}}.
func (r networkRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "IPv4": r.IPv4(),
		"IPv6": r.IPv6(), "Internal": r.Internal(), "Labels": r.Labels(), "CreatedAt": r.CreatedAt(),
	})
}

var networkHeader = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
	"IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

func runNetworkList(ctx context.Context, c *Cli, o *networkListOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.NetworkList(ctx, client.NetworkListOptions{Filters: filtersFrom(o.filter.values)})
	if err != nil {
		return err
	}
	items := res.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	format := listFormat(o.format, o.quiet, "{{.ID}}", "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
	rows := make([]networkRow, len(items))
	for i, n := range items {
		rows[i] = networkRow{n, !o.noTrunc}
	}
	return writeList(c.Out(), format, networkHeader, rows)
}

func newNetworkInspectCommand(c *Cli) *cobra.Command {
	return newKindInspectCommand(c, &inspectOptions{kind: "network"})
}

func newNetworkRemoveCommand(c *Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			apiClient, err := c.Client()
			if err != nil {
				return err
			}
			errs := make([]error, len(args))
			for i, name := range args {
				_, errs[i] = apiClient.NetworkRemove(cmdContext(cmd), name, client.NetworkRemoveOptions{})
			}
			return reportEach(c.Out(), args, errs, notFoundIf(force))
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCommand(c *Cli) *cobra.Command {
	o := pruneOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !o.force && !confirm(c, "WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			apiClient, err := c.Client()
			if err != nil {
				return err
			}
			res, err := apiClient.NetworkPrune(cmdContext(cmd), client.NetworkPruneOptions{Filters: filtersFrom(o.filter.values)})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.Out(), "Deleted Networks:")
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(c.Out(), n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(o.filter, "filter", "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

type networkConnectOptions struct {
	ip, ip6 string
	aliases *listOpts
}

func newNetworkConnectCommand(c *Cli) *cobra.Command {
	o := networkConnectOptions{aliases: newListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  requiresExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkConnect(cmdContext(cmd), c, args[0], args[1], &o)
		},
	}
	cmd.Flags().StringVar(&o.ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	cmd.Flags().StringVar(&o.ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	cmd.Flags().Var(o.aliases, "alias", "Add network-scoped alias for the container")
	return cmd
}

func runNetworkConnect(ctx context.Context, c *Cli, nw, ctr string, o *networkConnectOptions) error {
	es := &network.EndpointSettings{Aliases: o.aliases.GetAll()}
	ipam, err := endpointIPAM(o.ip, o.ip6)
	if err != nil {
		return err
	}
	es.IPAMConfig = ipam
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	_, err = apiClient.NetworkConnect(ctx, nw, client.NetworkConnectOptions{Container: ctr, EndpointConfig: es})
	return err
}

func newNetworkDisconnectCommand(c *Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  requiresExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			apiClient, err := c.Client()
			if err != nil {
				return err
			}
			_, err = apiClient.NetworkDisconnect(cmdContext(cmd), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// endpointIPAM parses --ip and --ip6 (either may be empty; nil when both are).
func endpointIPAM(ip4, ip6 string) (*network.EndpointIPAMConfig, error) {
	if ip4 == "" && ip6 == "" {
		return nil, nil
	}
	var c network.EndpointIPAMConfig
	if ip4 != "" {
		ip, err := netip.ParseAddr(ip4)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("invalid IPv4 address: %s", ip4)
		}
		c.IPv4Address = ip
	}
	if ip6 != "" {
		ip, err := netip.ParseAddr(ip6)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return nil, fmt.Errorf("invalid IPv6 address: %s", ip6)
		}
		c.IPv6Address = ip
	}
	return &c, nil
}
