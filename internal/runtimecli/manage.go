package runtimecli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/runtime"
)

func execCmd(g *globals) *cobra.Command {
	var (
		processFile, consoleSocket, cwd, userSpec, pidFile string
		env, caps                                          []string
		addGids                                            []int64
		tty, detach, noNewPrivs                            bool
		preserveFDs                                        int
	)
	c := &cobra.Command{
		Use:   "exec [flags] <container-id> [command [args...]]",
		Short: "run another process in a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			id := args[0]
			var p *specs.Process
			if processFile != "" {
				b, err := os.ReadFile(processFile)
				if err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("read process file: %w", err))
				}
				p = &specs.Process{}
				if err := json.Unmarshal(b, p); err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("parse process file %s: %w", processFile, err))
				}
			} else {
				if len(args) < 2 {
					return errdefs.InvalidParameter(fmt.Errorf("exec: give a command or --process"))
				}
				spec, err := rt.Spec(id)
				if err != nil {
					return err
				}
				base := *spec.Process
				p = &base
				p.Args = args[1:]
				p.Terminal = tty
				p.Env = append(append([]string{}, p.Env...), env...)
				if cwd != "" {
					p.Cwd = cwd
				}
				if userSpec != "" {
					uid, gid, err := parseUser(userSpec)
					if err != nil {
						return err
					}
					p.User = specs.User{UID: uid, GID: gid}
				}
				for _, gid := range addGids {
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if len(caps) > 0 && p.Capabilities != nil {
					cp := *p.Capabilities
					cp.Bounding = append(append([]string{}, cp.Bounding...), caps...)
					cp.Effective = append(append([]string{}, cp.Effective...), caps...)
					cp.Permitted = append(append([]string{}, cp.Permitted...), caps...)
					p.Capabilities = &cp
				}
			}
			o := runtime.ExecOpts{
				Process: p,
				IO:      runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: consoleSocket},
			}
			if pidFile != "" {
				o.PidFile, _ = filepath.Abs(pidFile)
			}
			for i := 0; i < preserveFDs; i++ {
				o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
			}
			var term *terminal
			if p.Terminal && consoleSocket == "" {
				if detach {
					return errdefs.InvalidParameter(fmt.Errorf("exec -t -d needs --console-socket"))
				}
				term = &terminal{}
				o.IO.OnConsole = term.attach
			}
			fwd := forwardSignals()
			defer fwd.stop()
			fwd.waitReady() // the process runs as soon as Exec returns
			pid, err := rt.Exec(id, o)
			if err != nil {
				return err
			}
			if detach {
				return nil
			}
			code := fwd.wait(pid, term, func(sig unix.Signal) { _ = unix.Kill(pid, sig) })
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&processFile, "process", "p", "", "path to a process.json")
	f.StringVar(&consoleSocket, "console-socket", "", "unix socket to receive the pty master")
	f.StringVar(&cwd, "cwd", "", "working directory in the container")
	f.StringVarP(&userSpec, "user", "u", "", "uid[:gid]")
	f.Int64SliceVarP(&addGids, "additional-gids", "g", nil, "additional gids")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable")
	f.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&detach, "detach", "d", false, "detach from the process")
	f.StringVar(&pidFile, "pid-file", "", "file to write the process's pid to")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.IntVar(&preserveFDs, "preserve-fds", 0, "pass this many fds after the standard ones")
	return c
}

func parseUser(s string) (uint32, uint32, error) {
	us, gs, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("--user %q: want uid[:gid] numbers", s))
	}
	var gid uint64
	if hasGid {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, errdefs.InvalidParameter(fmt.Errorf("--user %q: want uid[:gid] numbers", s))
		}
	}
	return uint32(uid), uint32(gid), nil
}

func psCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "ps [flags] <container-id>",
		Short: "list the processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			pids, err := rt.Processes(args[0])
			if err != nil {
				return err
			}
			if pids == nil {
				pids = []int{}
			}
			out := c.OutOrStdout()
			switch format {
			case "json":
				return json.NewEncoder(out).Encode(pids)
			case "table", "":
				w := tabwriter.NewWriter(out, 8, 1, 2, ' ', 0)
				fmt.Fprintln(w, "PID\tCMD")
				for _, p := range pids {
					cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
					fmt.Fprintf(w, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
				}
				return w.Flush()
			}
			return errdefs.InvalidParameter(fmt.Errorf("invalid format %q", format))
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return c
}

func pauseCmd(g *globals) *cobra.Command {
	return idCmd(g, "pause", "freeze every process of a container", (*runtime.Runtime).Pause)
}

func resumeCmd(g *globals) *cobra.Command {
	return idCmd(g, "resume", "thaw a paused container", (*runtime.Runtime).Resume)
}

// idCmd is a verb that takes one container ID and calls op on it.
func idCmd(g *globals, verb, short string, op func(*runtime.Runtime, string) error) *cobra.Command {
	return &cobra.Command{
		Use: verb + " <container-id>", Short: short, Args: exactArgs(1, verb),
		RunE: func(_ *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			return op(rt, args[0])
		},
	}
}

// event is runc's events output.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func eventsCmd(g *globals) *cobra.Command {
	var stats bool
	var interval time.Duration
	c := &cobra.Command{
		Use: "events [flags] <container-id>", Short: "print container stats", Args: exactArgs(1, "events"),
		RunE: func(c *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			id := args[0]
			enc := json.NewEncoder(c.OutOrStdout())
			for {
				s, err := rt.Stats(id)
				if err != nil {
					return err
				}
				if err := enc.Encode(event{Type: "stats", ID: id, Data: s}); err != nil {
					return err
				}
				if stats {
					return nil
				}
				time.Sleep(interval)
			}
		},
	}
	c.Flags().BoolVar(&stats, "stats", false, "print the stats once and exit")
	c.Flags().DurationVar(&interval, "interval", 5*time.Second, "interval between stats")
	return c
}

func updateCmd(g *globals) *cobra.Command {
	var resFile, memory, memSwap, memReservation, cpusetCpus, cpusetMems string
	var cpuShares, cpuPeriod uint64
	var cpuQuota, pidsLimit int64
	c := &cobra.Command{
		Use: "update [flags] <container-id>", Short: "change a container's resource limits", Args: exactArgs(1, "update"),
		RunE: func(c *cobra.Command, args []string) error {
			res := &specs.LinuxResources{}
			if resFile != "" {
				var r io.Reader = os.Stdin
				if resFile != "-" {
					f, err := os.Open(resFile)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				if err := json.NewDecoder(r).Decode(res); err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("parse resources: %w", err))
				}
			}
			fl := c.Flags()
			mem := func(name, v string, dst **int64) error {
				if !fl.Changed(name) {
					return nil
				}
				n, err := units.RAMInBytes(v)
				if err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("--%s %q: %w", name, v, err))
				}
				if res.Memory == nil {
					res.Memory = &specs.LinuxMemory{}
				}
				*dst = &n
				return nil
			}
			if res.Memory == nil {
				res.Memory = &specs.LinuxMemory{}
			}
			for _, m := range []struct {
				name, v string
				dst     **int64
			}{{"memory", memory, &res.Memory.Limit}, {"memory-swap", memSwap, &res.Memory.Swap}, {"memory-reservation", memReservation, &res.Memory.Reservation}} {
				if err := mem(m.name, m.v, m.dst); err != nil {
					return err
				}
			}
			if *res.Memory == (specs.LinuxMemory{}) {
				res.Memory = nil
			}
			if fl.Changed("cpu-shares") || fl.Changed("cpu-period") || fl.Changed("cpu-quota") || fl.Changed("cpuset-cpus") || fl.Changed("cpuset-mems") {
				if res.CPU == nil {
					res.CPU = &specs.LinuxCPU{}
				}
				if fl.Changed("cpu-shares") {
					res.CPU.Shares = &cpuShares
				}
				if fl.Changed("cpu-period") {
					res.CPU.Period = &cpuPeriod
				}
				if fl.Changed("cpu-quota") {
					res.CPU.Quota = &cpuQuota
				}
				if fl.Changed("cpuset-cpus") {
					res.CPU.Cpus = cpusetCpus
				}
				if fl.Changed("cpuset-mems") {
					res.CPU.Mems = cpusetMems
				}
			}
			if fl.Changed("pids-limit") {
				res.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			return rt.Update(args[0], res)
		},
	}
	f := c.Flags()
	f.StringVarP(&resFile, "resources", "r", "", "path to a JSON file of linux resources (- for stdin)")
	f.StringVar(&memory, "memory", "", "memory limit (e.g. 512m)")
	f.StringVar(&memSwap, "memory-swap", "", "memory+swap limit")
	f.StringVar(&memReservation, "memory-reservation", "", "memory soft limit")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CFS period in microseconds")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CFS quota in microseconds")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs to use")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes to use")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of tasks")
	return c
}
