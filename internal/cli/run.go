package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runOptions are the flags of `run` beyond those of `create`.
type runOptions struct {
	create     createFlags
	detach     bool
	sigProxy   bool
	detachKeys string
}

func newRunCommand(c *Cli) *cobra.Command {
	var ropts runOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			if len(args) > 1 {
				copts.Args = args[1:]
			}
			return runRun(cmdContext(cmd), c, cmd.Flags(), &ropts, copts)
		},
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.Bool("help", false, "Print usage")
	flags.BoolVarP(&ropts.detach, "detach", "d", false, "Run container in background and print container ID")
	flags.BoolVar(&ropts.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	flags.StringVar(&ropts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	addCreateFlags(flags, &ropts.create)
	copts = addContainerFlags(flags)
	return cmd
}

func newCreateCommand(c *Cli) *cobra.Command {
	var cf createFlags
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			if len(args) > 1 {
				copts.Args = args[1:]
			}
			return runCreate(cmdContext(cmd), c, cmd.Flags(), &cf, copts)
		},
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.Bool("help", false, "Print usage")
	addCreateFlags(flags, &cf)
	copts = addContainerFlags(flags)
	return cmd
}

// runCreate is `berth create`: create (pulling if needed) and print the ID.
func runCreate(ctx context.Context, c *Cli, flags *pflag.FlagSet, cf *createFlags, copts *containerOptions) error {
	if err := validatePullOpt(cf.pull); err != nil {
		return toStatusError(err, "create")
	}
	cfg, err := copts.parse(flags)
	if err != nil {
		return toStatusError(err, "create")
	}
	if cfg.Config.Tty {
		cfg.HostConfig.ConsoleSize[0], cfg.HostConfig.ConsoleSize[1] = c.Out().GetTtySize()
	}
	id, err := createContainer(ctx, c, cfg, copts.name, cf)
	if err != nil {
		return toStatusError(err, "create")
	}
	fmt.Fprintln(c.Out(), id)
	return nil
}

// createContainer sends the create request; on 404 (image missing) with
// --pull=missing it pulls and tries once more. --pull=always pulls first.
func createContainer(ctx context.Context, c *Cli, cfg *containerConfig, name string, cf *createFlags) (string, error) {
	apiClient, err := c.Client()
	if err != nil {
		return "", err
	}
	platform, err := parsePlatform(cf.platform)
	if err != nil {
		return "", err
	}
	var named reference.Named
	if ref, err := reference.ParseAnyReference(cfg.Config.Image); err == nil {
		if n, ok := ref.(reference.Named); ok {
			named = reference.TagNameOnly(n)
		}
	}
	pull := func() error {
		if named == nil {
			return fmt.Errorf("invalid reference format: %s", cfg.Config.Image)
		}
		return pullImage(ctx, c, apiClient, reference.FamiliarString(named), cf.platform, cf.quiet, c.Err())
	}
	if cf.pull == pullAlways {
		if err := pull(); err != nil {
			return "", err
		}
	}
	opts := client.ContainerCreateOptions{
		Config:           cfg.Config,
		HostConfig:       cfg.HostConfig,
		NetworkingConfig: cfg.NetworkingConfig,
		Platform:         platform,
		Name:             name,
	}
	resp, err := apiClient.ContainerCreate(ctx, opts)
	if err != nil {
		if !cerrdefs.IsNotFound(err) || named == nil || (cf.pull != pullMissing && cf.pull != "") {
			return "", err
		}
		if !cf.quiet {
			fmt.Fprintf(c.Err(), "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := pull(); err != nil {
			return "", err
		}
		resp, err = apiClient.ContainerCreate(ctx, opts)
		if err != nil {
			return "", err
		}
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(c.Err(), "WARNING: %s\n", w)
	}
	return resp.ID, nil
}

// pullImage pulls ref and renders the progress on out.
func pullImage(ctx context.Context, c *Cli, apiClient client.APIClient, ref, platform string, quiet bool, out io.Writer) error {
	resp, err := startPull(ctx, apiClient, ref, platform)
	if err != nil {
		return err
	}
	defer resp.Close()
	if quiet {
		out = io.Discard
	}
	return displayJSONMessages(resp, NewOutStream(out), nil)
}

// autoRemoveGrace bounds how long a failed `run --rm` waits for the
// daemon to remove the container.
const autoRemoveGrace = 5 * time.Second

// runRun is `berth run`: create, attach, wait, start — in that order, each
// step waiting for the previous response headers (CONTRACT.md §4.6).
func runRun(ctx context.Context, c *Cli, flags *pflag.FlagSet, ropts *runOptions, copts *containerOptions) error {
	if err := validatePullOpt(ropts.create.pull); err != nil {
		return toStatusError(err, "run")
	}
	cfg, err := copts.parse(flags)
	if err != nil {
		return toStatusError(err, "run")
	}
	config, hostConfig := cfg.Config, cfg.HostConfig
	if ropts.detach {
		if len(copts.attach.values) > 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr = false, false, false
		config.StdinOnce = false
	} else if err := c.In().CheckTty(config.AttachStdin, config.Tty); err != nil {
		return err
	}
	if config.Tty {
		hostConfig.ConsoleSize[0], hostConfig.ConsoleSize[1] = c.Out().GetTtySize()
	}

	// The attached session must survive the invocation's own cancellation
	// (signals are proxied to the container instead).
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	id, err := createContainer(ctx, c, cfg, copts.name, &ropts.create)
	if err != nil {
		return toStatusError(err, "run")
	}
	apiClient, _ := c.Client()

	if ropts.sigProxy {
		stop := forwardAllSignals(ctx, c, apiClient, id)
		defer stop()
	}

	detached := !config.AttachStdout && !config.AttachStderr
	if detached {
		// docker prints the ID as soon as the container exists.
		fmt.Fprintln(c.Out(), id)
	}

	attach := config.AttachStdin || config.AttachStdout || config.AttachStderr
	var errCh chan error
	if attach {
		resp, err := apiClient.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream:     true,
			Stdin:      config.AttachStdin,
			Stdout:     config.AttachStdout,
			Stderr:     config.AttachStderr,
			DetachKeys: ropts.detachKeys,
		})
		if err != nil {
			return err
		}
		defer resp.Close()
		streamer := &hijackedStreamer{resp: resp.HijackedResponse, tty: config.Tty, detachKeys: ropts.detachKeys}
		if config.AttachStdin {
			streamer.in = c.In()
		}
		if config.AttachStdout {
			streamer.out = c.Out()
		}
		if config.AttachStderr {
			if config.Tty {
				streamer.errOut = c.Out()
			} else {
				streamer.errOut = c.Err()
			}
		}
		errCh = make(chan error, 1)
		go func() { errCh <- streamer.stream(ctx) }()
	}

	// The wait has its own context: cancelling the attach after a failed
	// start must not turn into a spurious "Error waiting for container".
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	statusC := waitExitOrRemoved(waitCtx, c, apiClient, id, hostConfig.AutoRemove)

	if _, err := apiClient.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attach {
			cancel()
			<-errCh
		}
		if hostConfig.AutoRemove {
			// Give the daemon a moment to remove the container (docker
			// waits for it), but do not hang if it never does.
			select {
			case <-statusC:
			case <-time.After(autoRemoveGrace):
			}
		}
		return toStatusError(err, "run")
	}

	if attach && config.Tty && c.Out().IsTerminal() {
		if err := monitorTtySize(ctx, c, containerResizer(apiClient, id)); err != nil {
			fmt.Fprintln(c.Err(), "Error monitoring TTY size:", err)
		}
	}

	if detached {
		if errCh != nil {
			if err := <-errCh; err != nil && !errors.Is(err, errEscape) {
				return err
			}
		}
		return nil
	}

	if errCh != nil {
		if err := <-errCh; err != nil {
			if errors.Is(err, errEscape) {
				return nil // the user detached
			}
			return err
		}
	}
	if status := <-statusC; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

// waitExitOrRemoved sends the wait request now (the daemon answers the
// headers at once) and delivers the exit status later; 125 on errors.
func waitExitOrRemoved(ctx context.Context, c *Cli, apiClient client.APIClient, id string, removed bool) <-chan int {
	cond := container.WaitConditionNextExit
	if removed {
		cond = container.WaitConditionRemoved
	}
	res := apiClient.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	statusC := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintf(c.Err(), "Error waiting for container: %v\n", r.Error.Message)
				statusC <- 125
				return
			}
			statusC <- int(r.StatusCode)
		case err := <-res.Error:
			if !errors.Is(err, context.Canceled) {
				fmt.Fprintf(c.Err(), "Error waiting for container: %v\n", errText(err))
			}
			statusC <- 125
		}
	}()
	return statusC
}

// toStatusError maps a run/create failure to docker's exit codes: 127 when
// the command was not found, 126 when it could not be invoked, else 125.
func toStatusError(err error, verb string) error {
	var se StatusError
	if errors.As(err, &se) {
		return err
	}
	msg := errText(err)
	code := 125
	switch {
	case client.IsErrConnectionFailed(err):
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		code = 126
	}
	return StatusError{Cause: err, Status: withHelp(errors.New(msg), verb).Error(), StatusCode: code}
}

// errText is err's message as the user should read it. Connection
// failures read like docker's ("Cannot connect to the ... daemon at X. Is
// the ... daemon running?"), naming berth.
func errText(err error) string {
	if client.IsErrConnectionFailed(err) {
		var ce interface{ DaemonHost() string }
		host := ""
		if errors.As(err, &ce) {
			host = ce.DaemonHost()
		}
		if host == "" {
			host = connHost(err.Error())
		}
		if host != "" {
			return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", host)
		}
		return "Cannot connect to the berth daemon. Is the berth daemon running?"
	}
	return err.Error()
}

// connHost finds the daemon address in the client library's message.
func connHost(msg string) string {
	for _, f := range strings.Fields(msg) {
		f = strings.TrimRight(f, ";:.,")
		if strings.HasPrefix(f, "unix://") || strings.HasPrefix(f, "tcp://") {
			return f
		}
	}
	return ""
}
