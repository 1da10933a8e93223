package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ---- push ----

type pushOptions struct {
	remote     string
	all, quiet bool
}

func newPushCommand(c *Cli) *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  requiresExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.remote = args[0]
			return runPush(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all-tags", "a", false, "Push all tags of an image to the repository")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func runPush(ctx context.Context, c *Cli, opts *pushOptions) error {
	named, err := remoteRef(c, opts.remote, opts.all, opts.quiet)
	if err != nil {
		return err
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := apiClient.ImagePush(ctx, reference.FamiliarString(named), client.ImagePushOptions{
		All:          opts.all,
		RegistryAuth: registryAuthFor(named.String()),
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	out := c.Out()
	if opts.quiet {
		out = NewOutStream(io.Discard)
	}
	sum := newTransferSummary(resp)
	if err := displayJSONMessages(sum, out, func(json.RawMessage) {}); err != nil {
		return streamError(err)
	}
	if opts.quiet {
		fmt.Fprintln(c.Out(), reference.FamiliarString(named))
	} else {
		fmt.Fprintln(c.Err(), sum.line("pushed", reference.FamiliarString(named)))
	}
	return nil
}
