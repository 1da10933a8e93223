package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- groups ----

func newContainerCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: requiresNoArgs, RunE: showHelp}
	ls := newPsCommand(c)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
	cmd.AddCommand(
		newAttachCommand(c), newCommitCommand(c), newCreateCommand(c), newDiffCommand(c),
		newExecCommand(c), newExportCommand(c), newCpCommand(c), newContainerInspectCommand(c), newKillCommand(c),
		newLogsCommand(c), ls, newPauseCommand(c), newPortCommand(c), newContainerPruneCommand(c),
		newRenameCommand(c), newRestartCommand(c), newRmCommand(c), newRunCommand(c),
		newStartCommand(c), newStatsCommand(c), newStopCommand(c), newTopCommand(c),
		newUnpauseCommand(c), newUpdateCommand(c), newWaitCommand(c),
	)
	return cmd
}

func newImageCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: requiresNoArgs, RunE: showHelp}
	cmd.AddCommand(
		newHistoryCommand(c), newImportCommand(c), newImageInspectCommand(c), newLoadCommand(c),
		newImageListCommand(c), newImagePruneCommand(c), newPullCommand(c), newPushCommand(c), newImageRmCommand(c),
		newSaveCommand(c), newTagCommand(c),
	)
	return cmd
}

func newSystemCommand(c *Cli) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage Docker", Args: requiresNoArgs, RunE: showHelp}
	cmd.AddCommand(newDfCommand(c), newEventsCommand(c), newInfoCommand(c), newSystemPruneCommand(c))
	return cmd
}

func showHelp(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.OutOrStderr())
	return cmd.Help()
}

// ---- version ----

type versionInfo struct {
	Client clientVersion
	Server *serverVersion
}

type clientVersion struct {
	Version           string
	APIVersion        string
	DefaultAPIVersion string
	GoVersion         string
	GitCommit         string
	BuildTime         string
	Os                string
	Arch              string
	Context           string
}

type serverVersion struct {
	client.ServerVersionResult
	// Top-level fields docker reads for {{.Server.X}}, filled from the
	// Engine component.
	GoVersion, GitCommit, BuildTime, KernelVersion string
}

const versionTemplate = `{{with .Client -}}
Client:
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}
{{- if .Server}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
{{- range $c := .Components}}
 {{$c.Name}}:
{{- if eq $c.Name "Engine"}}
  Version:	{{$c.Version}}
  API version:	{{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:	{{index $c.Details "GoVersion"}}
  Git commit:	{{index $c.Details "GitCommit"}}
  Built:	{{index $c.Details "BuildTime"}}
  OS/Arch:	{{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:	{{index $c.Details "Experimental"}}
{{- else}}
  Version:	{{$c.Version}}
{{- range $k := detailKeys $c.Details}}
  {{$k}}:	{{index $c.Details $k}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}{{end}}
`

func newVersionCommand(c *Cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Docker version information",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(cmdContext(cmd), c, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func runVersion(ctx context.Context, c *Cli, format string) error {
	v := versionInfo{Client: clientVersion{
		Version:           Version,
		APIVersion:        client.MaxAPIVersion,
		DefaultAPIVersion: client.MaxAPIVersion,
		GoVersion:         runtime.Version(),
		GitCommit:         "unknown",
		BuildTime:         "unknown",
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		Context:           "default",
	}}
	var serverErr error
	if apiClient, err := c.Client(); err != nil {
		serverErr = err
	} else if sv, err := apiClient.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		serverErr = err
	} else {
		v.Client.APIVersion = apiClient.ClientVersion()
		s := &serverVersion{ServerVersionResult: sv}
		for _, comp := range sv.Components {
			if comp.Name == "Engine" {
				s.GoVersion, s.GitCommit = comp.Details["GoVersion"], comp.Details["GitCommit"]
				s.BuildTime, s.KernelVersion = comp.Details["BuildTime"], comp.Details["KernelVersion"]
			}
		}
		v.Server = s
	}
	var err error
	if format != "" {
		var tmpl *template.Template
		if tmpl, err = parseTemplate(format); err == nil {
			err = execInspectTemplate(c.Out(), tmpl, v)
		}
	} else {
		tmpl := template.Must(template.New("").Funcs(template.FuncMap{"detailKeys": detailKeys}).Parse(versionTemplate))
		tw := tabwriter.NewWriter(c.Out(), 20, 1, 1, ' ', 0)
		err = tmpl.Execute(tw, v)
		_ = tw.Flush()
	}
	if serverErr != nil {
		return serverErr
	}
	return err
}

func detailKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- info ----

func newInfoCommand(c *Cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInfo(cmdContext(cmd), c, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// infoView is what `info --format` templates see: the daemon's Info plus
// the client section.
type infoView struct {
	system.Info
	ClientInfo struct {
		Debug   bool
		Context string
		Version string
	}
	ServerErrors []string
}

func runInfo(ctx context.Context, c *Cli, format string) error {
	var v infoView
	v.ClientInfo.Context, v.ClientInfo.Version = "default", Version
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	res, serverErr := apiClient.Info(ctx, client.InfoOptions{})
	v.Info = res.Info
	if format != "" {
		if format == "json" {
			format = "{{json .}}"
		}
		tmpl, err := parseTemplate(format)
		if err != nil {
			return err
		}
		if serverErr != nil {
			return serverErr
		}
		return execInspectTemplate(c.Out(), tmpl, v)
	}
	out := c.Out()
	fmt.Fprintf(out, "Client:\n Version:    %s\n Context:    default\n Debug Mode: false\n\nServer:\n", Version)
	if serverErr != nil {
		fmt.Fprintf(out, "ERROR: %s\n", errText(serverErr))
		return StatusError{StatusCode: 1}
	}
	writeServerInfo(out, &res.Info)
	for _, w := range res.Info.Warnings {
		fmt.Fprintln(c.Err(), w)
	}
	return nil
}

func writeServerInfo(out io.Writer, i *system.Info) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p(" Containers: %d", i.Containers)
	p("  Running: %d", i.ContainersRunning)
	p("  Paused: %d", i.ContainersPaused)
	p("  Stopped: %d", i.ContainersStopped)
	p(" Images: %d", i.Images)
	p(" Server Version: %s", i.ServerVersion)
	p(" Storage Driver: %s", i.Driver)
	for _, kv := range i.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", i.LoggingDriver)
	p(" Cgroup Driver: %s", i.CgroupDriver)
	if i.CgroupVersion != "" {
		p(" Cgroup Version: %s", i.CgroupVersion)
	}
	p(" Plugins:")
	p("  Volume: %s", strings.Join(i.Plugins.Volume, " "))
	p("  Network: %s", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) > 0 {
		p("  Authorization: %s", strings.Join(i.Plugins.Authorization, " "))
	}
	p("  Log: %s", strings.Join(i.Plugins.Log, " "))
	if i.Swarm.LocalNodeState != "" {
		p(" Swarm: %s", i.Swarm.LocalNodeState)
	} else {
		p(" Swarm: ")
	}
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p(" Runtimes: %s", strings.Join(names, " "))
		p(" Default Runtime: %s", i.DefaultRuntime)
	}
	if i.InitBinary != "" {
		p(" Init Binary: %s", i.InitBinary)
	}
	if len(i.SecurityOptions) > 0 {
		p(" Security Options:")
		for _, o := range i.SecurityOptions {
			parts := strings.Split(o, ",")
			for j, kv := range parts {
				k, val, _ := strings.Cut(kv, "=")
				if j == 0 {
					p("  %s", val)
					continue
				}
				p("   %s: %s", strings.ToUpper(k[:1])+k[1:], val)
			}
		}
	}
	p(" Kernel Version: %s", i.KernelVersion)
	p(" Operating System: %s", i.OperatingSystem)
	p(" OSType: %s", i.OSType)
	p(" Architecture: %s", i.Architecture)
	p(" CPUs: %d", i.NCPU)
	p(" Total Memory: %s", units.BytesSize(float64(i.MemTotal)))
	p(" Name: %s", i.Name)
	p(" ID: %s", i.ID)
	p(" Docker Root Dir: %s", i.DockerRootDir)
	p(" Debug Mode: %v", i.Debug)
	if len(i.Labels) > 0 {
		p(" Labels:")
		for _, l := range i.Labels {
			p("  %s", l)
		}
	}
	p(" Experimental: %v", i.ExperimentalBuild)
	if i.RegistryConfig != nil && len(i.RegistryConfig.InsecureRegistryCIDRs) > 0 {
		p(" Insecure Registries:")
		for _, r := range i.RegistryConfig.IndexConfigs {
			if !r.Secure {
				p("  %s", r.Name)
			}
		}
		for _, cidr := range i.RegistryConfig.InsecureRegistryCIDRs {
			p("  %s", cidr.String())
		}
	}
	p(" Live Restore Enabled: %v", i.LiveRestoreEnabled)
	p("")
}

// ---- events ----

type eventsOptions struct {
	since, until, format string
	filter               *listOpts
}

func newEventsCommand(c *Cli) *cobra.Command {
	opts := eventsOptions{filter: newListOpts(validateFilter)}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  requiresNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvents(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.since, "since", "", "Show all events created since timestamp")
	flags.StringVar(&opts.until, "until", "", "Stream events until this timestamp")
	flags.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	flags.StringVar(&opts.format, "format", "", "Format output using a custom template")
	return cmd
}

func runEvents(ctx context.Context, c *Cli, opts *eventsOptions) error {
	var tmpl *template.Template
	if opts.format != "" {
		f := opts.format
		if f == "json" {
			f = "{{json .}}"
		}
		var err error
		if tmpl, err = parseTemplate(f); err != nil {
			return err
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := apiClient.Events(ctx, client.EventsListOptions{Since: opts.since, Until: opts.until, Filters: filtersFrom(opts.filter.values)})
	w := bufio.NewWriter(c.Out())
	for {
		select {
		case ev := <-res.Messages:
			if tmpl != nil {
				if err := tmpl.Execute(w, ev); err != nil {
					return err
				}
				w.WriteString("\n")
			} else {
				writeEvent(w, ev)
			}
			if err := w.Flush(); err != nil {
				return err
			}
		case err := <-res.Err:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// writeEvent prints one event in docker's default layout:
// "<time> <type> <action> <id> (k=v, ...)".
func writeEvent(w io.Writer, ev events.Message) {
	if ev.TimeNano != 0 {
		fmt.Fprintf(w, "%s ", time.Unix(0, ev.TimeNano).Format(time.RFC3339Nano))
	} else if ev.Time != 0 {
		fmt.Fprintf(w, "%s ", time.Unix(ev.Time, 0).Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
	if len(ev.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(ev.Actor.Attributes))
		for k := range ev.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + ev.Actor.Attributes[k]
		}
		fmt.Fprintf(w, " (%s)", strings.Join(attrs, ", "))
	}
	fmt.Fprint(w, "\n")
}
