// Command devmain is a temporary harness for trying the CLI alone.
package main

import (
	"os"

	"berth/internal/cli"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "berth", SilenceUsage: true, SilenceErrors: true}
	cli.AddCommands(root)
	os.Exit(cli.Execute(root))
}
