// Package cli implements berth's docker-compatible client verbs (run, ps,
// images, ...). It talks to the daemon only through the Engine API, using
// github.com/moby/moby/client over a unix socket.
//
// Every command is three pieces, so that the logic can be tested without a
// terminal (STYLE.md #13):
//
//   - an options struct holding the parsed flags and arguments,
//   - a cobra builder (new<Verb>Command) that fills it,
//   - run<Verb>(ctx, *Cli, opts) error, the logic, which only sees a *Cli
//     (streams plus a lazily created API client).
//
// Output formats, messages and exit codes follow the docker CLI 28.2.2, with
// "docker" replaced by "berth" where the binary names itself.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// DefaultHost is the daemon address used when neither -H nor BERTH_HOST is set.
const DefaultHost = "unix:///run/berth/berth.sock"

// EnvHost names the environment variable that overrides DefaultHost.
const EnvHost = "BERTH_HOST"

// binaryName is how the CLI names itself in messages ("berth run --help").
const binaryName = "berth"

// Version is the client version printed by `berth version`; the linker may
// override it with -X.
var Version = "0.1.0-dev"

// Cli holds what every command needs: the standard streams and the Engine API
// client. The client is created on first use so that commands which never
// talk to the daemon (flag errors, --help) cost nothing.
type Cli struct {
	in  *InStream
	out *OutStream
	err *OutStream

	host string

	clientOnce sync.Once
	client     client.APIClient
	clientErr  error
}

// CliOption configures a Cli built by NewCli.
type CliOption func(*Cli)

// WithStreams sets the standard streams (tests pass buffers).
func WithStreams(in io.Reader, out, errOut io.Writer) CliOption {
	return func(c *Cli) {
		c.in = NewInStream(in)
		c.out = NewOutStream(out)
		c.err = NewOutStream(errOut)
	}
}

// WithAPIClient makes the Cli use an existing API client instead of dialling
// the daemon address.
func WithAPIClient(apiClient client.APIClient) CliOption {
	return func(c *Cli) {
		c.client = apiClient
		c.clientOnce.Do(func() {})
	}
}

// WithHost sets the daemon address (unix://PATH or tcp://HOST:PORT).
func WithHost(host string) CliOption {
	return func(c *Cli) { c.host = host }
}

// NewCli returns a Cli on the process's standard streams unless options say
// otherwise.
func NewCli(opts ...CliOption) *Cli {
	c := &Cli{
		in:  NewInStream(os.Stdin),
		out: NewOutStream(os.Stdout),
		err: NewOutStream(os.Stderr),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// In is the standard input.
func (c *Cli) In() *InStream { return c.in }

// Out is the standard output.
func (c *Cli) Out() *OutStream { return c.out }

// Err is the standard error.
func (c *Cli) Err() *OutStream { return c.err }

// Host returns the daemon address: the -H flag, else $BERTH_HOST, else DefaultHost.
func (c *Cli) Host() string {
	if c.host != "" {
		return c.host
	}
	if h := os.Getenv(EnvHost); h != "" {
		return h
	}
	return DefaultHost
}

// Client returns the Engine API client, creating it on first use. One client
// (and so one pool of keep-alive connections) serves the whole invocation.
func (c *Cli) Client() (client.APIClient, error) {
	c.clientOnce.Do(func() {
		host := c.Host()
		c.client, c.clientErr = client.New(
			client.WithHost(host),
			client.WithUserAgent("Berth-Client/"+Version+" (linux)"),
		)
		if c.clientErr != nil {
			c.clientErr = fmt.Errorf("invalid daemon address %q: %w", host, c.clientErr)
		}
	})
	return c.client, c.clientErr
}

// StatusError carries an exit status. Status, when set, is printed on
// stderr as is; otherwise the cause is printed.
type StatusError struct {
	Cause      error
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("exit status %d", e.StatusCode)
}

func (e StatusError) Unwrap() error { return e.Cause }

// AddCommands registers the client verbs on root, plus the persistent
// -H/--host flag that selects the daemon.
func AddCommands(root *cobra.Command) {
	addCommandsTo(root, NewCli())
}

func addCommandsTo(root *cobra.Command, cli *Cli) {
	// Global options go before the verb (`berth -H unix:///x.sock ps`), as
	// with docker: they are root flags, not persistent ones, so verbs keep
	// their own -H (history --human) and the daemon its own --host.
	root.TraverseChildren = true
	root.Flags().StringVarP(&cli.host, "host", "H", "", "Daemon socket to connect to (default "+DefaultHost+", or $"+EnvHost+")")
	root.Flags().BoolP("debug", "D", false, "Enable debug mode")
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate(helpTemplate)
	root.SetFlagErrorFunc(flagErrorFunc)

	defer disableFlagsInUseLine(root)
	root.AddCommand(
		// top-level shortcuts, as docker has them
		newRunCommand(cli),
		newCreateCommand(cli),
		newStartCommand(cli),
		newStopCommand(cli),
		newRestartCommand(cli),
		newKillCommand(cli),
		newRmCommand(cli),
		newPsCommand(cli),
		newLogsCommand(cli),
		newExecCommand(cli),
		newAttachCommand(cli),
		newInspectCommand(cli),
		newWaitCommand(cli),
		newTopCommand(cli),
		newRenameCommand(cli),
		newPauseCommand(cli),
		newUnpauseCommand(cli),
		newStatsCommand(cli),
		newUpdateCommand(cli),
		newPortCommand(cli),
		newDiffCommand(cli),
		newExportCommand(cli),
		newCpCommand(cli),
		newCommitCommand(cli),
		newBuildCommand(cli),
		newBuilderCommand(cli),
		newImagesCommand(cli),
		newRmiCommand(cli),
		newHistoryCommand(cli),
		newTagCommand(cli),
		newSaveCommand(cli),
		newLoadCommand(cli),
		newImportCommand(cli),
		newPullCommand(cli),
		newPushCommand(cli), newLoginCommand(cli), newLogoutCommand(cli),
		newVersionCommand(cli),
		newInfoCommand(cli),
		newEventsCommand(cli),
		// management groups
		newContainerCommand(cli),
		newImageCommand(cli),
		newSystemCommand(cli),
		newVolumeCommand(cli),
		newNetworkCommand(cli),
	)
}

// disableFlagsInUseLine drops cobra's " [flags]" suffix: docker's usage
// lines spell [OPTIONS] themselves.
func disableFlagsInUseLine(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	for _, sub := range cmd.Commands() {
		disableFlagsInUseLine(sub)
	}
}

// Execute runs root and returns the process exit code, printing errors the
// way the docker CLI does: usage errors exit 125 (flags) or 1 (arguments),
// daemon errors exit 1, and StatusErrors exit with their own code.
func Execute(root *cobra.Command) int {
	return executeTo(root, os.Stderr)
}

func executeTo(root *cobra.Command, stderr io.Writer) int {
	root.SilenceErrors = true
	root.SilenceUsage = true
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var se StatusError
	if errors.As(err, &se) {
		if se.Status != "" {
			fmt.Fprintln(stderr, se.Status)
		} else if se.Cause != nil {
			fmt.Fprintln(stderr, errText(se.Cause))
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") {
		// cobra: `unknown command "frob" for "berth"`
		name := ""
		if parts := strings.Split(msg, `"`); len(parts) > 1 {
			name = parts[1]
		}
		fmt.Fprintf(stderr, "%s: unknown command: %s %s\n\nRun '%s --help' for more information\n", binaryName, binaryName, name, binaryName)
		return 1
	}
	if cmd != nil && isUsageError(msg) {
		fmt.Fprintf(stderr, "%s: %s\n\n%s\n\nSee '%s --help' for more information\n", binaryName, msg, usageLine(cmd), cmd.CommandPath())
		return 1
	}
	fmt.Fprintln(stderr, errText(err))
	return 1
}

func isUsageError(msg string) bool {
	return strings.Contains(msg, " requires ") && strings.Contains(msg, "argument")
}

// flagErrorFunc renders a flag parsing error like docker: the error, the
// usage line and a pointer to --help; exit status 125.
func flagErrorFunc(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return StatusError{
		Cause:      err,
		Status:     fmt.Sprintf("%s\n\n%s\n\nRun '%s --help' for more information", err, usageLine(cmd), cmd.CommandPath()),
		StatusCode: 125,
	}
}

func usageLine(cmd *cobra.Command) string {
	return "Usage:  " + cmd.UseLine()
}

// Argument validators with docker's wording.

func requiresMinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fmt.Errorf("'%s' requires at least %d %s", cmd.CommandPath(), n, pluralArg(n))
	}
}

func requiresExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fmt.Errorf("'%s' requires %d %s", cmd.CommandPath(), n, pluralArg(n))
	}
}

func requiresRangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return fmt.Errorf("'%s' requires at least %d and at most %d %s", cmd.CommandPath(), lo, hi, pluralArg(hi))
	}
}

func requiresNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("'%s' accepts no arguments", cmd.CommandPath())
}

func pluralArg(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// withHelp wraps an error of `berth run`/`create` the docker way:
// "berth: <err>\n\nRun 'berth run --help' for more information".
func withHelp(err error, verb string) error {
	return fmt.Errorf("%s: %w\n\nRun '%s %s --help' for more information", binaryName, err, binaryName, verb)
}

// apiClient is the Cli's client or an error that a command returns as is.
func (c *Cli) apiClient() (client.APIClient, error) {
	return c.Client()
}

// cmdContext returns the command's context, or Background for commands
// invoked directly (tests).
func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

const usageTemplate = `Usage:  {{if .Runnable}}{{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}{{if .Runnable}}
        {{end}}{{.CommandPath}} COMMAND{{end}}
{{if gt (len .Aliases) 0}}
Aliases:
  {{.NameAndAliases}}
{{end}}{{if .HasExample}}
Examples:
{{.Example}}
{{end}}{{with .Short}}
{{.}}
{{end}}{{if .HasAvailableSubCommands}}
Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}
{{end}}{{if .HasAvailableLocalFlags}}
Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableInheritedFlags}}
Global Options:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{end}}`

const helpTemplate = `{{if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`
