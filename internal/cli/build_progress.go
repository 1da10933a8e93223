package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"berth/internal/build"
)

// berth build reads the daemon's classic stream ("Step N/M : ...", the
// RUN output, " ---> ..." lines) and shows it in one of three ways
// (--progress):
//
//   - plain: the stream as it comes, docker's classic output;
//   - tty (auto on a terminal): one line per step — number, instruction,
//     CACHED or its time — redrawn while the step runs; a step's output is
//     held back and shown in full only when that step fails;
//   - quiet (-q): nothing but the image ID; a failing step's output on
//     stderr.
//
// Every mode ends a failed build with the Dockerfile lines of the failed
// step (from the daemon's StepLocation) before the error itself.

const (
	progressPlain = "plain"
	progressTTY   = "tty"
	progressQuiet = "quiet"
)

// progressMode resolves --progress (and -q) for an output that is or is
// not a terminal.
func progressMode(flag string, quiet, terminal bool) (string, error) {
	if quiet {
		return progressQuiet, nil
	}
	switch flag {
	case "", "auto":
		if terminal {
			return progressTTY, nil
		}
		return progressPlain, nil
	case progressPlain, progressTTY, progressQuiet:
		return flag, nil
	}
	return "", fmt.Errorf("invalid --progress %q: want auto, plain, tty or quiet", flag)
}

var (
	stepLine  = regexp.MustCompile(`^Step (\d+)/(\d+) : (.*)$`)
	noiseLine = regexp.MustCompile(`^( ---> (Running in [0-9a-f]+|[0-9a-f]{12})?|Removing intermediate container [0-9a-f]+)$`)
)

// buildView renders the stream; it is the io.Writer the stream's text
// goes to. Safe for the ticker that redraws the running step.
type buildView struct {
	mode   string
	out    io.Writer // the view
	errOut io.Writer // quiet mode's failure output
	width  int       // terminal columns, 0 if unknown
	// dockerfile, when the CLI could read it, shows the failed lines as
	// written; name is how to call it.
	dockerfile []byte
	name       string

	mu      sync.Mutex
	partial []byte
	step    string // "[N/M] INSTRUCTION" of the step in progress, "" if none
	started time.Time
	cached  bool
	notes   []string     // --explain lines of the step
	log     bytes.Buffer // the step's output
	stop    chan struct{}
	now     func() time.Time
}

func newBuildView(mode string, out, errOut io.Writer, width int) *buildView {
	return &buildView{mode: mode, out: out, errOut: errOut, width: width, name: "Dockerfile", now: time.Now}
}

// start redraws the running step's time every 200 ms on a terminal,
// until finish.
func (v *buildView) start() {
	if v.mode == progressTTY {
		v.stop = make(chan struct{})
		go v.tick()
	}
}

// tick redraws the running step's time on the terminal.
func (v *buildView) tick() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.mu.Lock()
			if v.step != "" && !v.cached {
				v.draw(fmt.Sprintf("%.1fs", v.now().Sub(v.started).Seconds()), false)
			}
			v.mu.Unlock()
		}
	}
}

func (v *buildView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mode == progressPlain {
		return v.out.Write(p)
	}
	v.partial = append(v.partial, p...)
	for {
		i := bytes.IndexByte(v.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(v.partial[:i])
		v.partial = v.partial[i+1:]
		v.line(line)
	}
}

// line takes one line of the classic stream (tty and quiet modes).
func (v *buildView) line(l string) {
	if m := stepLine.FindStringSubmatch(l); m != nil {
		v.endStep("")
		v.step = fmt.Sprintf("[%s/%s] %s", m[1], m[2], m[3])
		v.started, v.cached, v.notes = v.now(), false, nil
		v.log.Reset()
		if v.mode == progressTTY {
			v.draw("", false)
		}
		return
	}
	switch {
	case l == " ---> Using cache":
		v.cached = true
	case strings.HasPrefix(l, " ---> cache miss: "):
		v.notes = append(v.notes, strings.TrimPrefix(l, " ---> "))
	case noiseLine.MatchString(l):
	case strings.HasPrefix(l, "Successfully built ") || strings.HasPrefix(l, "Successfully tagged "):
		v.endStep("")
		if v.mode == progressTTY {
			fmt.Fprintln(v.out, l)
		}
	default:
		v.log.WriteString(l + "\n")
	}
}

// draw shows the step line with status; final ends it with a newline.
func (v *buildView) draw(status string, final bool) {
	text := v.step
	if v.width > 0 {
		if max := v.width - len(status) - 3; max > 10 && len(text) > max {
			text = text[:max-3] + "..."
		}
	}
	s := "\r\x1b[2K" + text
	if status != "" {
		s += "  " + status
	}
	if final {
		s += "\n"
	}
	io.WriteString(v.out, s)
}

// endStep closes the step in progress; status "" is CACHED or its time.
func (v *buildView) endStep(status string) {
	if v.step == "" {
		return
	}
	if status == "" {
		status = fmt.Sprintf("%.1fs", v.now().Sub(v.started).Seconds())
		if v.cached {
			status = "CACHED"
		}
	}
	if v.mode == progressTTY {
		v.draw(status, true)
		for _, n := range v.notes {
			fmt.Fprintf(v.out, "      %s\n", n)
		}
	}
	v.step = ""
}

// finish ends the view; failed carries where the build failed (nil if
// it did not, or the daemon did not say).
func (v *buildView) finish(failed bool, loc *build.StepLocationDetail) {
	if v.stop != nil {
		close(v.stop)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.partial) > 0 {
		if v.mode == progressPlain {
			v.partial = nil
		} else {
			v.line(string(v.partial))
			v.partial = nil
		}
	}
	if !failed {
		v.endStep("")
		return
	}
	w := v.out
	if v.mode == progressQuiet {
		w = v.errOut
	}
	step := v.step
	v.endStep("ERROR")
	if v.mode != progressPlain && v.log.Len() > 0 {
		// The full output of the failed step, held back until now.
		fmt.Fprintf(w, "------\n > %s:\n", step)
		w.Write(v.log.Bytes())
		fmt.Fprintln(w, "------")
	}
	if loc != nil {
		if v.mode == progressPlain {
			w = v.errOut
		}
		io.WriteString(w, v.location(loc))
	}
}

// location is the failed step's Dockerfile lines, marked.
func (v *buildView) location(loc *build.StepLocationDetail) string {
	var b strings.Builder
	if loc.StartLine <= 0 {
		fmt.Fprintf(&b, "%s: step %d: %s\n", v.name, loc.Step, loc.Source)
		return b.String()
	}
	end := max(loc.EndLine, loc.StartLine)
	if end > loc.StartLine {
		fmt.Fprintf(&b, "%s:%d-%d\n", v.name, loc.StartLine, end)
	} else {
		fmt.Fprintf(&b, "%s:%d\n", v.name, loc.StartLine)
	}
	b.WriteString("--------------------\n")
	lines := strings.Split(string(v.dockerfile), "\n")
	if v.dockerfile == nil || end > len(lines) {
		// Not readable here (a Dockerfile in the context tar only): the
		// instruction as the daemon parsed it.
		fmt.Fprintf(&b, "%4d | >>> %s\n", loc.StartLine, loc.Source)
	} else {
		for n := loc.StartLine; n <= end; n++ {
			fmt.Fprintf(&b, "%4d | >>> %s\n", n, strings.TrimRight(lines[n-1], "\r"))
		}
	}
	b.WriteString("--------------------\n")
	return b.String()
}
