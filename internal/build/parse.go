// Package build executes Dockerfiles the way docker's classic builder does:
// each stage starts from an image (or scratch), each instruction yields a
// new image (metadata-only instructions add no layer), RUN steps run as
// containers on the engine's own runtime and are committed, COPY/ADD
// steps add a layer made from the build context or an earlier stage.
//
// Lifecycle: Parse the Dockerfile (a *ParseError is a 400 for the API),
// then Build with a Backend (the daemon) and an optional Cache. Build
// writes docker's classic progress lines ("Step N/M : ...") to
// Options.Out and returns the final image ID.
//
// What the classic builder lacks follows BuildKit's Dockerfile frontend:
// heredocs (heredoc.go), ADD of http(s) URLs and git repositories
// (remote.go), COPY --parents/--exclude/--link (copy_flags.go), FROM
// --platform and the platform ARGs (platform.go), and building only the
// stages the target needs, independent ones in parallel (stages.go).
package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Escape   rune
	// Syntax is the "# syntax=" directive, if any: accepted and
	// ignored (Build notes it), as berth has one built-in frontend.
	Syntax string
}

// ParseError is a Dockerfile that cannot be parsed; its message is
// docker's "dockerfile parse error line N: ...".
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("dockerfile parse error line %d: %s", e.Line, e.Msg)
	}
	return "dockerfile parse error: " + e.Msg
}

// Parse reads a Dockerfile.
func Parse(r io.Reader) (*Dockerfile, error) {
	dt, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read the Dockerfile: %w", err)
	}
	syntax, _, _, _ := parser.DetectSyntax(dt)
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, parseError(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, parseError(err)
	}
	if len(stages) == 0 {
		return nil, &ParseError{Msg: "no build stage in current context"}
	}
	return &Dockerfile{Stages: stages, MetaArgs: metaArgs, Escape: res.EscapeToken, Syntax: syntax}, nil
}

// parseError turns buildkit's located errors into docker's message.
func parseError(err error) error {
	line := 0
	msg := err.Error()
	var loc *parser.LocationError
	if errors.As(err, &loc) {
		for _, r := range loc.Locations {
			if len(r) > 0 {
				line = r[0].Start.Line
				break
			}
		}
		msg = loc.Unwrap().Error()
	}
	var unknown *instructions.UnknownInstructionError
	if errors.As(err, &unknown) {
		line = unknown.Line
		msg = "unknown instruction: " + strings.ToUpper(unknown.Instruction)
	}
	return &ParseError{Line: line, Msg: msg}
}
