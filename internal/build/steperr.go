package build

import (
	"errors"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// StepError is a build that failed at one Dockerfile instruction. Its
// message is the cause's own (the classic API stream carries docker's
// words unchanged); the step number and the Dockerfile lines are for
// clients that show where it failed (berth build: StepLocation).
type StepError struct {
	Step      int    // the "Step N/M" number
	StartLine int    // first Dockerfile line of the instruction, 1-based
	EndLine   int    // last line (line continuations, heredocs)
	Source    string // the instruction as written
	Err       error
}

func (e *StepError) Error() string { return e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// StepLocation is the aux message a daemon sends, for clients that ask
// (LocateHeader), just before the in-stream error of a failed step.
type StepLocation struct {
	FailedStep *StepLocationDetail `json:"berth.failedStep"`
}

// StepLocationDetail locates a failed step in the Dockerfile.
type StepLocationDetail struct {
	Step      int    `json:"step"`
	StartLine int    `json:"startLine"`
	EndLine   int    `json:"endLine"`
	Source    string `json:"source"`
}

// Location is err's StepLocation, if the build failed at a step.
func Location(err error) (StepLocation, bool) {
	var se *StepError
	if !errors.As(err, &se) {
		return StepLocation{}, false
	}
	return StepLocation{FailedStep: &StepLocationDetail{Step: se.Step, StartLine: se.StartLine, EndLine: se.EndLine, Source: se.Source}}, true
}

// located wraps err with where step (whose source is at loc) is in the
// Dockerfile; an error already located (an ONBUILD trigger's, a nested
// stage's) keeps its place.
func located(err error, step int, source string, loc []parser.Range) error {
	if err == nil {
		return nil
	}
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	e := &StepError{Step: step, Source: source, Err: err}
	if len(loc) > 0 {
		e.StartLine, e.EndLine = loc[0].Start.Line, loc[len(loc)-1].End.Line
	}
	return e
}
