package nsinit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RunHooks runs OCI hooks in order with the state JSON on stdin; the first
// failure stops the rest and is returned with the hook's output.
func RunHooks(kind string, hooks []specs.Hook, state specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	in, err := json.Marshal(state)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		ctx := context.Background()
		cancel := context.CancelFunc(func() {})
		if h.Timeout != nil && *h.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		if cmd.Env == nil {
			cmd.Env = []string{}
		}
		cmd.Stdin = bytes.NewReader(in)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			return fmt.Errorf("%s hook %s: %w: %s", kind, h.Path, err, bytes.TrimSpace(out.Bytes()))
		}
	}
	return nil
}

// RunHooksWarn runs every hook, in order, whatever the earlier ones did:
// the spec's rule for poststart and poststop hooks, whose failures are only
// warnings. It returns each failure.
func RunHooksWarn(kind string, hooks []specs.Hook, state specs.State) []error {
	var errs []error
	for i := range hooks {
		if err := RunHooks(kind, hooks[i:i+1], state); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func runHooks(kind string, hooks []specs.Hook, state specs.State) error {
	return RunHooks(kind, hooks, state)
}
