// Command berth is the single binary of the berth container engine: the
// docker-compatible client verbs, the daemon, the keeper that holds running
// containers, the OCI runtime (`berth runtime ...`, or invoked as
// `berth-runtime`) and the registry server.
//
// This file is wiring only. The one pre-main trick — the container init and
// exec re-exec — is dispatched first, through internal/nsinit.
package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"berth/internal/initproc"
)

func main() {
	// 1. Re-exec'd as a container's init or exec child: never returns.
	maybeContainerInit()

	// 2. Bind-mounted into a container as /sbin/berth-init (--init): be its
	// pid 1, reaping zombies and forwarding signals.
	if filepath.Base(os.Args[0]) == "berth-init" {
		os.Exit(initproc.Main(os.Args[1:]))
	}

	// 3. Invoked as "berth-runtime": behave exactly like a runc-compatible CLI.
	if filepath.Base(os.Args[0]) == "berth-runtime" {
		os.Exit(runtimeMain(os.Args[1:]))
	}
	// 4. `berth runtime ...` skips building the docker verbs' command tree,
	// a tenth of a short `berth runtime run`.
	if len(os.Args) > 1 && os.Args[1] == "runtime" {
		os.Exit(runtimeSubMain(os.Args[2:]))
	}

	root := &cobra.Command{
		Use:           "berth",
		Short:         "A self-sufficient container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addCommands(root)
	os.Exit(execute(root))
}
