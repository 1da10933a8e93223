package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// maybeContainerInit hands control to the container init / exec child when
// this process was re-exec'd for that purpose. (runtime helper: call
// nsinit here.)
func maybeContainerInit() {}

// runtimeMain runs the runc-compatible CLI when invoked as berth-runtime.
// (runtime helper: call runtimecli.Main here.)
func runtimeMain(args []string) int {
	fmt.Fprintln(os.Stderr, "berth-runtime: not wired yet")
	return 1
}

// addCommands registers every subcommand. Each line belongs to one package.
func addCommands(root *cobra.Command) {
	// client verbs (internal/cli): cli.AddCommands(root)
	// daemon (cmd/berth/daemon.go): root.AddCommand(daemonCommand())
	// runtime (internal/runtimecli): root.AddCommand(runtimecli.NewCommand())
}

// execute runs the root command and returns the process exit code.
// (cli helper: replace with cli.Execute(root) that maps errors to docker's exit codes.)
func execute(root *cobra.Command) int {
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		return 1
	}
	return 0
}
