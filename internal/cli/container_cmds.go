package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// forEachContainer runs op on every name concurrently (docker sends
// multi-target requests on separate connections at once), then prints the
// successes in argument order on stdout and returns the failures joined.
func forEachContainer(ctx context.Context, c *Cli, names []string, op func(ctx context.Context, apiClient client.APIClient, name string) error) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op(ctx, apiClient, name)
		}()
	}
	wg.Wait()
	return reportEach(c.Out(), names, errs, nil)
}

// reportEach prints, one a line, each of names whose entry in errs is
// nil, and returns the texts of the other errors joined by newlines, as
// docker's multi-target commands do. An error that skip says yes to is
// neither printed nor returned (rm --force of something missing).
func reportEach(out io.Writer, names []string, errs []error, skip func(error) bool) error {
	var msgs []string
	for i, name := range names {
		if err := errs[i]; err != nil {
			if skip != nil && skip(err) {
				continue
			}
			msgs = append(msgs, errText(err))
			continue
		}
		fmt.Fprintln(out, name)
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

// notFoundIf is reportEach's skip for --force: not-found errors when force
// is set.
func notFoundIf(force bool) func(error) bool {
	return func(err error) bool { return force && cerrdefs.IsNotFound(err) }
}

// ---- stop / restart ----

type stopOptions struct {
	signal     string
	timeout    int
	timeoutSet bool
	containers []string
}

func newStopCommand(c *Cli) *cobra.Command    { return newStopLikeCommand(c, "stop") }
func newRestartCommand(c *Cli) *cobra.Command { return newStopLikeCommand(c, "restart") }

func newStopLikeCommand(c *Cli, verb string) *cobra.Command {
	var opts stopOptions
	short := "Stop one or more running containers"
	if verb == "restart" {
		short = "Restart one or more containers"
	}
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			opts.timeoutSet = cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time")
			if verb == "restart" {
				return runRestart(cmdContext(cmd), c, &opts)
			}
			return runStop(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.signal, "signal", "s", "", "Signal to send to the container")
	flags.IntVarP(&opts.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	flags.IntVar(&opts.timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = flags.MarkHidden("time")
	return cmd
}

func (o *stopOptions) timeoutPtr() *int {
	if !o.timeoutSet {
		return nil
	}
	t := o.timeout
	return &t
}

func runStop(ctx context.Context, c *Cli, opts *stopOptions) error {
	return forEachContainer(ctx, c, opts.containers, func(ctx context.Context, api client.APIClient, name string) error {
		_, err := api.ContainerStop(ctx, name, client.ContainerStopOptions{Signal: opts.signal, Timeout: opts.timeoutPtr()})
		return err
	})
}

func runRestart(ctx context.Context, c *Cli, opts *stopOptions) error {
	return forEachContainer(ctx, c, opts.containers, func(ctx context.Context, api client.APIClient, name string) error {
		_, err := api.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: opts.signal, Timeout: opts.timeoutPtr()})
		return err
	})
}

// ---- kill ----

type killOptions struct {
	signal     string
	containers []string
}

func newKillCommand(c *Cli) *cobra.Command {
	var opts killOptions
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			return runKill(cmdContext(cmd), c, &opts)
		},
	}
	cmd.Flags().StringVarP(&opts.signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func runKill(ctx context.Context, c *Cli, opts *killOptions) error {
	return forEachContainer(ctx, c, opts.containers, func(ctx context.Context, api client.APIClient, name string) error {
		_, err := api.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: opts.signal})
		return err
	})
}

// ---- rm ----

type rmOptions struct {
	force, volumes, links bool
	containers            []string
}

func newRmCommand(c *Cli) *cobra.Command {
	var opts rmOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			return runRm(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	flags.BoolVarP(&opts.volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	flags.BoolVarP(&opts.links, "link", "l", false, "Remove the specified link")
	return cmd
}

func runRm(ctx context.Context, c *Cli, opts *rmOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	errs := make([]error, len(opts.containers))
	var wg sync.WaitGroup
	for i, name := range opts.containers {
		name = strings.Trim(name, "/")
		if name == "" {
			errs[i] = errors.New("Container name cannot be empty")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = apiClient.ContainerRemove(ctx, name, client.ContainerRemoveOptions{
				RemoveVolumes: opts.volumes, RemoveLinks: opts.links, Force: opts.force,
			})
		}()
	}
	wg.Wait()
	return reportEach(c.Out(), opts.containers, errs, notFoundIf(opts.force))
}

// ---- pause / unpause ----

func newPauseCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmdContext(cmd), c, args, func(ctx context.Context, api client.APIClient, name string) error {
				_, err := api.ContainerPause(ctx, name, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func newUnpauseCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmdContext(cmd), c, args, func(ctx context.Context, api client.APIClient, name string) error {
				_, err := api.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

// ---- wait ----

func newWaitCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWait(cmdContext(cmd), c, args)
		},
	}
}

func runWait(ctx context.Context, c *Cli, names []string) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	var msgs []string
	for _, name := range names {
		res := apiClient.ContainerWait(ctx, name, client.ContainerWaitOptions{})
		select {
		case r := <-res.Result:
			fmt.Fprintf(c.Out(), "%d\n", r.StatusCode)
		case err := <-res.Error:
			msgs = append(msgs, errText(err))
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

// ---- rename ----

func newRenameCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  requiresExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRename(cmdContext(cmd), c, args[0], args[1])
		},
	}
}

func runRename(ctx context.Context, c *Cli, oldName, newName string) error {
	oldName, newName = strings.TrimSpace(oldName), strings.TrimSpace(newName)
	if oldName == "" || newName == "" {
		return errors.New("Error: Neither old nor new names may be empty")
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	if _, err := apiClient.ContainerRename(ctx, oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
		return fmt.Errorf("%s\nError: failed to rename container named %s", errText(err), oldName)
	}
	return nil
}

// ---- top ----

func newTopCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTop(cmdContext(cmd), c, args[0], args[1:])
		},
		DisableFlagParsing: false,
	}
}

func runTop(ctx context.Context, c *Cli, name string, psArgs []string) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerTop(ctx, name, client.ContainerTopOptions{Arguments: psArgs})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.Out(), 20, 1, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
	for _, p := range res.Processes {
		fmt.Fprintln(w, strings.Join(p, "\t"))
	}
	return w.Flush()
}

// ---- port ----

func newPortCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := ""
			if len(args) > 1 {
				port = args[1]
			}
			return runPort(cmdContext(cmd), c, args[0], port)
		},
	}
}

func runPort(ctx context.Context, c *Cli, name, privatePort string) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	var ports network.PortMap
	if res.Container.NetworkSettings != nil {
		ports = res.Container.NetworkSettings.Ports
	}
	if privatePort != "" {
		port, proto, _ := strings.Cut(privatePort, "/")
		if proto == "" {
			proto = "tcp"
		}
		p, err := network.ParsePort(port + "/" + proto)
		if err != nil {
			return err
		}
		bindings, ok := ports[p]
		if !ok || len(bindings) == 0 {
			return fmt.Errorf("Error: No public port '%s' published for %s", p, name)
		}
		for _, b := range bindings {
			fmt.Fprintln(c.Out(), formatHostPort(b))
		}
		return nil
	}
	keys := make([]network.Port, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Num() != keys[j].Num() {
			return keys[i].Num() < keys[j].Num()
		}
		return keys[i].Proto() < keys[j].Proto()
	})
	for _, p := range keys {
		for _, b := range ports[p] {
			fmt.Fprintf(c.Out(), "%s -> %s\n", p, formatHostPort(b))
		}
	}
	return nil
}

func formatHostPort(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + b.HostPort
	}
	return ip + ":" + b.HostPort
}

// ---- update ----

type updateOptions struct {
	memory            memBytes
	memorySwap        memSwapBytes
	memoryReservation memBytes
	cpus              nanoCPUs
	cpuShares         int64
	cpusetCpus        string
	cpusetMems        string
	cpuQuota          int64
	cpuPeriod         int64
	pidsLimit         int64
	blkioWeight       uint16
	restart           string
	containers        []string
	changed           func(string) bool
}

func newUpdateCommand(c *Cli) *cobra.Command {
	var opts updateOptions
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			opts.changed = cmd.Flags().Changed
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			return runUpdate(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.VarP(&opts.memory, "memory", "m", "Memory limit")
	flags.Var(&opts.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	flags.Var(&opts.memoryReservation, "memory-reservation", "Memory soft limit")
	flags.Var(&opts.cpus, "cpus", "Number of CPUs")
	flags.Int64VarP(&opts.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	flags.StringVar(&opts.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	flags.StringVar(&opts.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	flags.Int64Var(&opts.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	flags.Int64Var(&opts.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	flags.Int64Var(&opts.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	flags.Uint16Var(&opts.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	flags.StringVar(&opts.restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func runUpdate(ctx context.Context, c *Cli, opts *updateOptions) error {
	resources := &container.Resources{
		Memory:            int64(opts.memory),
		MemorySwap:        int64(opts.memorySwap),
		MemoryReservation: int64(opts.memoryReservation),
		NanoCPUs:          int64(opts.cpus),
		CPUShares:         opts.cpuShares,
		CpusetCpus:        opts.cpusetCpus,
		CpusetMems:        opts.cpusetMems,
		CPUQuota:          opts.cpuQuota,
		CPUPeriod:         opts.cpuPeriod,
		BlkioWeight:       opts.blkioWeight,
	}
	if opts.changed != nil && opts.changed("pids-limit") {
		p := opts.pidsLimit
		resources.PidsLimit = &p
	}
	var restart *container.RestartPolicy
	if opts.restart != "" {
		p, err := parseRestartPolicy(opts.restart)
		if err != nil {
			return err
		}
		restart = &p
	}
	var warnMu sync.Mutex
	var warnings []string
	err := forEachContainer(ctx, c, opts.containers, func(ctx context.Context, api client.APIClient, name string) error {
		res, err := api.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{Resources: resources, RestartPolicy: restart})
		warnMu.Lock()
		warnings = append(warnings, res.Warnings...)
		warnMu.Unlock()
		return err
	})
	for _, w := range warnings {
		fmt.Fprintln(c.Err(), w)
	}
	return err
}
