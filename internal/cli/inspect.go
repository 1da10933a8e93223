package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type inspectOptions struct {
	format string
	size   bool
	kind   string
	refs   []string
}

func newInspectCommand(c *Cli) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Docker objects",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.refs = args
			return runInspect(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	flags.StringVar(&opts.kind, "type", "", "Only inspect objects of the given type")
	flags.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

func newContainerInspectCommand(c *Cli) *cobra.Command {
	opts := &inspectOptions{kind: "container"}
	cmd := newKindInspectCommand(c, opts)
	cmd.Flags().BoolVarP(&opts.size, "size", "s", false, "Display total file sizes")
	return cmd
}

func newImageInspectCommand(c *Cli) *cobra.Command {
	return newKindInspectCommand(c, &inspectOptions{kind: "image"})
}

// newKindInspectCommand is `<kind> inspect` (container, image, network,
// volume): inspect of objects of opts.kind only.
func newKindInspectCommand(c *Cli, opts *inspectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] " + strings.ToUpper(opts.kind) + " [" + strings.ToUpper(opts.kind) + "...]",
		Short: "Display detailed information on one or more " + opts.kind + "s",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.refs = args
			return runInspect(cmdContext(cmd), c, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// inspectObject fetches one object's raw JSON.
type inspectObject func(ctx context.Context, api client.APIClient, ref string, size bool) ([]byte, error)

var inspectKinds = map[string]inspectObject{
	"container": func(ctx context.Context, api client.APIClient, ref string, size bool) ([]byte, error) {
		res, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
		return res.Raw, err
	},
	"image": func(ctx context.Context, api client.APIClient, ref string, _ bool) ([]byte, error) {
		var raw bytes.Buffer
		_, err := api.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		return raw.Bytes(), err
	},
	"network": func(ctx context.Context, api client.APIClient, ref string, _ bool) ([]byte, error) {
		res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
		return res.Raw, err
	},
	"volume": func(ctx context.Context, api client.APIClient, ref string, _ bool) ([]byte, error) {
		res, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
		return res.Raw, err
	},
}

// inspectOrder is docker's fall-through order for untyped inspect.
var inspectOrder = []string{"container", "image", "network", "volume"}

func runInspect(ctx context.Context, c *Cli, opts *inspectOptions) error {
	kinds := inspectOrder
	if opts.kind != "" {
		if _, ok := inspectKinds[opts.kind]; !ok {
			return fmt.Errorf("%q is not a valid value for --type", opts.kind)
		}
		kinds = []string{opts.kind}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	var objects []json.RawMessage
	var errs []string
	for _, ref := range opts.refs {
		raw, err := inspectFirst(ctx, apiClient, kinds, ref, opts.size)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				if opts.kind == "" {
					errs = append(errs, "Error: No such object: "+ref)
				} else {
					errs = append(errs, errText(err))
				}
				continue
			}
			errs = append(errs, errText(err))
			break
		}
		objects = append(objects, raw)
	}
	if err := writeInspect(c.Out(), opts.format, objects); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// inspectFirst tries each kind in order; only a 404 moves on to the next.
func inspectFirst(ctx context.Context, api client.APIClient, kinds []string, ref string, size bool) ([]byte, error) {
	var lastErr error
	for _, k := range kinds {
		raw, err := inspectKinds[k](ctx, api, ref, size)
		if err == nil {
			return raw, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// writeInspect prints objects as an indented JSON array, or once per
// object through a template.
func writeInspect(out io.Writer, format string, objects []json.RawMessage) error {
	if format == "" || format == "json" {
		if format == "json" {
			for _, o := range objects {
				var buf bytes.Buffer
				if err := json.Compact(&buf, o); err != nil {
					return err
				}
				fmt.Fprintln(out, buf.String())
			}
			return nil
		}
		var buf bytes.Buffer
		buf.WriteString("[")
		for i, o := range objects {
			if i > 0 {
				buf.WriteString(",")
			}
			buf.WriteString("\n    ")
			if err := json.Indent(&buf, bytes.TrimSpace(o), "    ", "    "); err != nil {
				return err
			}
		}
		if len(objects) > 0 {
			buf.WriteString("\n")
		}
		buf.WriteString("]\n")
		_, err := buf.WriteTo(out)
		return err
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, o := range objects {
		var v any
		dec := json.NewDecoder(bytes.NewReader(o))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := execInspectTemplate(out, tmpl, v); err != nil {
			return err
		}
	}
	return nil
}

func execInspectTemplate(out io.Writer, tmpl *template.Template, v any) error {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	buf.WriteString("\n")
	_, err := buf.WriteTo(out)
	return err
}
