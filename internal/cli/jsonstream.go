package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/go-units"
)

// jsonMessage is one message of a pull/push/load/import/build progress
// stream (CONTRACT.md §3.3).
type jsonMessage struct {
	Stream         string `json:"stream,omitempty"`
	Status         string `json:"status,omitempty"`
	ID             string `json:"id,omitempty"`
	Progress       string `json:"progress,omitempty"`
	ProgressDetail *struct {
		Current int64 `json:"current,omitempty"`
		Total   int64 `json:"total,omitempty"`
	} `json:"progressDetail,omitempty"`
	ErrorDetail *jsonError      `json:"errorDetail,omitempty"`
	Error       string          `json:"error,omitempty"`
	Aux         json.RawMessage `json:"aux,omitempty"`
}

// jsonError is an error reported inside a 200 stream; Code, when set,
// becomes the exit status (a failing build RUN step).
type jsonError struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func (e *jsonError) Error() string { return e.Message }

// progressBar renders the pre-rendered bar when the daemon sent one, or a
// bar computed from progressDetail.
func (m *jsonMessage) progressBar(width int) string {
	if m.Progress != "" {
		return m.Progress
	}
	d := m.ProgressDetail
	if d == nil || d.Current <= 0 {
		return ""
	}
	size := units.HumanSize(float64(d.Current))
	if d.Total <= 0 {
		return fmt.Sprintf("%8v", size)
	}
	barWidth := 50
	if width > 0 && width < 110 {
		barWidth = 25
	}
	filled := int(float64(barWidth) * float64(d.Current) / float64(d.Total))
	if filled > barWidth {
		filled = barWidth
	}
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	return fmt.Sprintf("[%s] %8v/%v", bar, size, units.HumanSize(float64(d.Total)))
}

// displayJSONMessages renders a progress stream like the docker CLI: on a
// terminal each id keeps one line that is redrawn in place; otherwise one
// line per status change, without progress bars. An in-stream error ends
// the display and is returned as *jsonError.
func displayJSONMessages(in io.Reader, out *OutStream, aux func(json.RawMessage)) error {
	dec := json.NewDecoder(in)
	ids := map[string]int{}
	lines := 0
	width := 0
	if out.IsTerminal() {
		_, w := out.GetTtySize()
		width = int(w)
	}
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Aux != nil && aux != nil {
			aux(m.Aux)
			continue
		}
		if m.ErrorDetail != nil {
			return m.ErrorDetail
		}
		if m.Error != "" {
			return &jsonError{Message: m.Error}
		}
		if m.Stream != "" {
			fmt.Fprint(out, m.Stream)
			continue
		}
		bar := m.progressBar(width)
		if !out.IsTerminal() {
			if bar != "" && m.ProgressDetail != nil {
				continue // progress bars only on a terminal
			}
			if m.ID != "" {
				fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
			} else if m.Status != "" {
				fmt.Fprintf(out, "%s\n", m.Status)
			}
			continue
		}
		line := m.Status
		if bar != "" {
			line += " " + bar
		}
		if m.ID == "" {
			fmt.Fprintf(out, "%s\n", line)
			lines++
			continue
		}
		idx, seen := ids[m.ID]
		if !seen {
			ids[m.ID] = lines
			fmt.Fprintf(out, "%s: %s\n", m.ID, line)
			lines++
			continue
		}
		up := lines - idx
		// Move up to the id's line, redraw it, and come back down.
		fmt.Fprintf(out, "\x1b[%dA\r\x1b[2K%s: %s\r\x1b[%dB", up, m.ID, line, up)
	}
}
