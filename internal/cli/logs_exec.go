package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- logs ----

type logsOptions struct {
	follow     bool
	since      string
	until      string
	timestamps bool
	details    bool
	tail       string
	container  string
}

func newLogsCommand(c *Cli) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			return runLogs(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.follow, "follow", "f", false, "Follow log output")
	flags.StringVar(&opts.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	flags.StringVar(&opts.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	flags.BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps")
	flags.BoolVar(&opts.details, "details", false, "Show extra details provided to logs")
	flags.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

func runLogs(ctx context.Context, c *Cli, opts *logsOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, err := apiClient.ContainerInspect(ctx, opts.container, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	body, err := apiClient.ContainerLogs(ctx, res.Container.ID, client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Since:      opts.since,
		Until:      opts.until,
		Timestamps: opts.timestamps,
		Follow:     opts.follow,
		Tail:       opts.tail,
		Details:    opts.details,
	})
	if err != nil {
		return err
	}
	defer body.Close()
	if res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(c.Out(), body)
	} else {
		_, err = stdcopy.StdCopy(c.Out(), c.Err(), body)
	}
	return err
}

// ---- exec ----

type execOptions struct {
	interactive bool
	tty         bool
	detach      bool
	user        string
	workdir     string
	privileged  bool
	detachKeys  string
	env         *listOpts
	envFile     *listOpts
	container   string
	command     []string
}

func newExecCommand(c *Cli) *cobra.Command {
	opts := execOptions{env: newListOpts(validateEnv), envFile: newListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container, opts.command = args[0], args[1:]
			return runExec(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.BoolVarP(&opts.detach, "detach", "d", false, "Detached mode: run command in the background")
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	flags.VarP(opts.env, "env", "e", "Set environment variables")
	flags.Var(opts.envFile, "env-file", "Read in a file of environment variables")
	flags.BoolVarP(&opts.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	flags.BoolVar(&opts.privileged, "privileged", false, "Give extended privileges to the command")
	flags.BoolVarP(&opts.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	flags.StringVarP(&opts.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	flags.StringVarP(&opts.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// execCreateOptions maps the flags to the exec create body.
func (o *execOptions) execCreateOptions() (client.ExecCreateOptions, error) {
	env, err := readKVStrings(o.envFile.values, o.env.values, true)
	if err != nil {
		return client.ExecCreateOptions{}, err
	}
	eo := client.ExecCreateOptions{
		User:       o.user,
		Privileged: o.privileged,
		TTY:        o.tty,
		DetachKeys: o.detachKeys,
		Env:        env,
		WorkingDir: o.workdir,
		Cmd:        o.command,
	}
	if !o.detach {
		eo.AttachStdout, eo.AttachStderr = true, true
		eo.AttachStdin = o.interactive
	}
	return eo, nil
}

func runExec(ctx context.Context, c *Cli, opts *execOptions) error {
	eo, err := opts.execCreateOptions()
	if err != nil {
		return err
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	// An inspect first makes "no such container" win over tty errors, and
	// avoids leaking an exec on the daemon when the tty check fails.
	if _, err := apiClient.ContainerInspect(ctx, opts.container, client.ContainerInspectOptions{}); err != nil {
		return err
	}
	if !opts.detach {
		if err := c.In().CheckTty(eo.AttachStdin, eo.TTY); err != nil {
			return err
		}
	}
	if eo.TTY {
		h, w := c.Out().GetTtySize()
		eo.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	created, err := apiClient.ExecCreate(ctx, opts.container, eo)
	if err != nil {
		return err
	}
	if opts.detach {
		_, err := apiClient.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: eo.TTY, ConsoleSize: eo.ConsoleSize})
		return err
	}

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	resp, err := apiClient.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: eo.TTY, ConsoleSize: eo.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	streamer := &hijackedStreamer{out: c.Out(), resp: resp.HijackedResponse, tty: eo.TTY, detachKeys: opts.detachKeys}
	if eo.AttachStdin {
		streamer.in = c.In()
	}
	if eo.TTY {
		streamer.errOut = c.Out()
	} else {
		streamer.errOut = c.Err()
	}
	errCh := make(chan error, 1)
	go func() { errCh <- streamer.stream(ctx) }()
	if eo.TTY && c.In().IsTerminal() {
		if err := monitorTtySize(ctx, c, execResizer(apiClient, created.ID)); err != nil {
			fmt.Fprintln(c.Err(), "Error monitoring TTY size:", err)
		}
	}
	if err := <-errCh; err != nil {
		return err
	}
	ins, err := apiClient.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return StatusError{Cause: err, StatusCode: -1}
		}
		return err
	}
	if ins.ExitCode != 0 {
		return StatusError{StatusCode: ins.ExitCode}
	}
	return nil
}
