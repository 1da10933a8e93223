// Package runtimecli is berth's runc-compatible command line: `berth runtime
// <verb>`, or the berth binary invoked as `berth-runtime`. Verbs, flags and
// exit codes follow runc, so tools that drive runc (containerd, podman,
// Docker's --runtime) can drive berth: TestPodmanRunsBerthRuntime shows
// podman doing so, and TestOCIRuntimeValidation runs the OCI runtime-tools
// suite (scripts/runtime-validation.sh compares it with runc). With
// --systemd-cgroup a "slice:prefix:name" cgroupsPath is placed where systemd
// would put it, on cgroupfs. Flag parsing lives here; the work is
// internal/runtime's.
package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"berth/internal/runtime"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth/runtime"

// ExitError carries a container process's exit code out of a command.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// globals are runc's global flags.
type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	criu          string
	rootless      string
}

func (g *globals) runtime() (*runtime.Runtime, error) { return runtime.New(g.root) }

// logError records err where runc would: the --log file, in text or JSON
// (containerd reads the last JSON error line to report a failure).
func (g *globals) logError(err error) {
	if g.log == "" {
		return
	}
	f, ferr := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	now := time.Now().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(), "time": now})
		fmt.Fprintf(f, "%s\n", b)
		return
	}
	fmt.Fprintf(f, "time=%q level=error msg=%q\n", now, err.Error())
}

// NewCommand returns the `runtime` command for the berth binary.
func NewCommand() *cobra.Command {
	return newRoot("runtime", true)
}

// Main runs the CLI as `berth-runtime` with args (without the program name)
// and returns the process exit code.
func Main(args []string) int {
	root := newRoot("berth-runtime", false)
	root.SetArgs(args)
	err := root.Execute()
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case err != nil:
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(use string, sub bool) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           use,
		Short:         "Run OCI containers (runc-compatible)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", DefaultRoot, "root directory for storage of container state")
	pf.StringVar(&g.log, "log", "", "append errors to this file")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "enable debug logging")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is systemd's slice:prefix:name; berth still writes cgroupfs, at the path systemd would use")
	pf.StringVar(&g.criu, "criu", "criu", "accepted for runc compatibility; checkpointing is not supported")
	pf.StringVar(&g.rootless, "rootless", "auto", "accepted for runc compatibility")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		if g.debug {
			slog.SetLogLoggerLevel(slog.LevelDebug)
		}
	}
	for _, c := range []*cobra.Command{
		specCmd(g), createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g),
		deleteCmd(g), listCmd(g), execCmd(g), psCmd(g), pauseCmd(g), resumeCmd(g),
		eventsCmd(g), updateCmd(g), featuresCmd(g),
	} {
		c.RunE = wrap(g, c.RunE, sub)
		root.AddCommand(c)
	}
	return root
}

// wrap logs failures to --log and, inside the berth binary (sub), exits
// with a container's exit code itself, since berth's own error handling
// only knows success and failure.
func wrap(g *globals, fn func(*cobra.Command, []string) error, sub bool) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		err := fn(c, args)
		var ee *ExitError
		if errors.As(err, &ee) {
			if sub {
				os.Exit(ee.Code)
			}
			return err
		}
		if err != nil {
			g.logError(err)
		}
		return err
	}
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s: expected %d argument(s), got %d", what, n, len(args))
		}
		return nil
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// MainSub runs `berth runtime <args>` without building the rest of berth's
// command tree: every docker verb's cobra command and flags cost ~0.6 ms
// (150 page faults) at each start, a tenth of a whole `berth runtime run`.
// Errors print and exit as under the full tree, except flag errors, which
// exit 1 as runc's do.
func MainSub(args []string) int {
	root := &cobra.Command{Use: "berth", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(NewCommand())
	root.SetArgs(append([]string{"runtime"}, args...))
	err := root.Execute()
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
