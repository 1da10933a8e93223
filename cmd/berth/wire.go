package main

import (
	"github.com/spf13/cobra"

	"berth/internal/cli"
	"berth/internal/nsinit"
	"berth/internal/runtimecli"
)

// maybeContainerInit hands control to the container init / exec child when
// this process was re-exec'd for that purpose (never returns then).
func maybeContainerInit() { nsinit.Init() }

// runtimeMain runs the runc-compatible CLI when invoked as berth-runtime.
func runtimeMain(args []string) int { return runtimecli.Main(args) }

// runtimeSubMain runs `berth runtime <args>`.
func runtimeSubMain(args []string) int { return runtimecli.MainSub(args) }

// addCommands registers every subcommand. Each line belongs to one package.
func addCommands(root *cobra.Command) {
	cli.AddCommands(root) // client verbs (internal/cli)
	root.AddCommand(daemonCommand(), keeperCommand())
	root.AddCommand(runtimecli.NewCommand()) // runtime (internal/runtimecli)
	root.AddCommand(registryCommand())       // registry server (internal/registry/server)
}

// execute runs the root command and returns the process exit code, mapping
// errors to docker's exit codes (internal/cli).
func execute(root *cobra.Command) int { return cli.Execute(root) }
