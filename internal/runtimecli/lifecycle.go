package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
	"berth/internal/runtime"
)

func specCmd(g *globals) *cobra.Command {
	var bundle string
	var rootless bool
	c := &cobra.Command{
		Use:   "spec",
		Short: "create a new specification file (config.json)",
		Args:  exactArgs(0, "spec"),
		RunE: func(*cobra.Command, []string) error {
			s := runtime.Example()
			if rootless {
				rootlessSpec(s)
			}
			p := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("file %s exists: remove it first", p)
			}
			b, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(p, b, 0o666)
		},
	}
	c.Flags().StringVarP(&bundle, "bundle", "b", ".", "path to the root of the bundle directory")
	c.Flags().BoolVar(&rootless, "rootless", false, "generate a configuration for a rootless container")
	return c
}

func rootlessSpec(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: uint32(os.Geteuid()), ContainerID: 0, Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: uint32(os.Getegid()), ContainerID: 0, Size: 1}}
	s.Linux.Resources = nil
}

// createFlags are shared by create and run.
type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (f *createFlags) add(c *cobra.Command) {
	c.Flags().StringVarP(&f.bundle, "bundle", "b", ".", "path to the root of the bundle directory")
	c.Flags().StringVar(&f.consoleSocket, "console-socket", "", "unix socket to receive the pty master of a terminal container")
	c.Flags().StringVar(&f.pidFile, "pid-file", "", "file to write the init's pid to")
	c.Flags().BoolVar(&f.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	c.Flags().BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	c.Flags().IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after the standard ones to the container")
}

func (f *createFlags) opts() runtime.CreateOpts {
	pidFile := f.pidFile
	if pidFile != "" {
		if abs, err := filepath.Abs(pidFile); err == nil {
			pidFile = abs
		}
	}
	return runtime.CreateOpts{
		Bundle: f.bundle, PidFile: pidFile, PreserveFDs: f.preserveFDs,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring,
		IO: runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: f.consoleSocket},
	}
}

func createCmd(g *globals) *cobra.Command {
	var f createFlags
	c := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "create a container",
		Args:  exactArgs(1, "create"),
		RunE: func(_ *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			o := f.opts()
			if err := g.applySystemdCgroup(&o); err != nil {
				return err
			}
			_, err = rt.Create(args[0], o)
			return err
		},
	}
	f.add(c)
	return c
}

func startCmd(g *globals) *cobra.Command {
	return idCmd(g, "start", "start a created container", (*runtime.Runtime).Start)
}

func runCmd(g *globals) *cobra.Command {
	var f createFlags
	var detach, keep bool
	c := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "create and run a container",
		Args:  exactArgs(1, "run"),
		RunE: func(_ *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			id := args[0]
			o := f.opts()
			if err := g.applySystemdCgroup(&o); err != nil {
				return err
			}
			if detach {
				if _, err := rt.Create(id, o); err != nil {
					return err
				}
				if err := rt.Start(id); err != nil {
					_ = rt.Delete(id, true)
					return err
				}
				return nil
			}
			spec := o.Spec
			if spec == nil {
				if spec, err = runtime.LoadSpec(o.Bundle); err != nil {
					return err
				}
				o.Spec = spec
			}
			var tty *terminal
			if spec.Process != nil && spec.Process.Terminal && o.IO.ConsoleSocket == "" {
				tty = &terminal{}
				o.IO.OnConsole = tty.attach
			}
			fwd := forwardSignals()
			defer fwd.stop()
			pid, err := rt.Create(id, o)
			if err != nil {
				return err
			}
			fwd.waitReady()
			if err := rt.Start(id); err != nil {
				_ = rt.Delete(id, true)
				_, _ = unix.Wait4(pid, nil, 0, nil)
				return err
			}
			code := fwd.wait(pid, tty, func(sig unix.Signal) { _ = rt.Kill(id, sig, false) })
			if !keep {
				if err := rt.Delete(id, true); err != nil {
					return err
				}
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	c.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return c
}

// stateJSON is what `runc state` prints.
type stateJSON struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func fullState(rt *runtime.Runtime, id string) (*stateJSON, error) {
	st, err := rt.State(id)
	if err != nil {
		return nil, err
	}
	out := &stateJSON{State: *st, Owner: ownerName()}
	out.Created, _ = rt.Created(id)
	if s, err := rt.Spec(id); err == nil && s.Root != nil {
		out.Rootfs = s.Root.Path
		if !filepath.IsAbs(out.Rootfs) {
			out.Rootfs = filepath.Join(st.Bundle, out.Rootfs)
		}
	}
	return out, nil
}

func ownerName() string {
	if u, err := user.LookupUid(os.Geteuid()); err == nil {
		return u.Name
	}
	return strconv.Itoa(os.Geteuid())
}

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "output the state of a container",
		Args:  exactArgs(1, "state"),
		RunE: func(c *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			st, err := fullState(rt, args[0])
			if err != nil {
				return err
			}
			return writeJSON(c.OutOrStdout(), st)
		},
	}
}

// ParseSignal accepts "KILL", "SIGKILL" or "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "send a signal to the container's init (default SIGTERM)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = ParseSignal(args[1]); err != nil {
					return errdefs.InvalidParameter(err)
				}
			}
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			return rt.Kill(args[0], sig, all)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process in the container")
	return c
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "delete [flags] <container-id>...",
		Short: "delete a container and its resources",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				err := rt.Delete(id, force)
				if err != nil && !(force && errdefs.IsNotFound(err)) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return c
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "list containers",
		Args:    exactArgs(0, "list"),
		RunE: func(c *cobra.Command, _ []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			states, err := rt.List()
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if quiet {
				for _, s := range states {
					fmt.Fprintln(out, s.ID)
				}
				return nil
			}
			full := []stateJSON{}
			for _, s := range states {
				if f, err := fullState(rt, s.ID); err == nil {
					full = append(full, *f)
				}
			}
			switch format {
			case "json":
				return json.NewEncoder(out).Encode(full)
			case "table", "":
				w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
				fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range full {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
						s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			}
			return errdefs.InvalidParameter(fmt.Errorf("invalid format %q", format))
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return c
}
