package cli

import (
	"strings"
	"testing"
	"time"

	"berth/internal/build"
)

// classicStream is what the daemon sends for a build whose second step is
// a cache hit and whose third, a RUN, fails after printing two lines.
const classicStream = "Step 1/3 : FROM busybox\n ---> 12c9b1444c1f\n" +
	"Step 2/3 : COPY a.txt /a\n ---> Using cache\n ---> 65814964f3a2\n" +
	"Step 3/3 : RUN make\n ---> cache miss: file /a sha256:1 changed (was sha256:2)\n ---> Running in 1387da9bd832\n" +
	"compiling\nerror: boom\nRemoving intermediate container 1387da9bd832\n"

var failedLoc = &build.StepLocationDetail{Step: 3, StartLine: 3, EndLine: 4, Source: "RUN make"}

func renderStream(t *testing.T, mode string, stream string, failed bool, df string) (string, string) {
	t.Helper()
	var out, errOut strings.Builder
	v := newBuildView(mode, &out, &errOut, 0)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	v.now = func() time.Time { clock = clock.Add(250 * time.Millisecond); return clock }
	if df != "" {
		v.dockerfile = []byte(df)
	}
	// Split mid-line, as the stream's messages may be.
	v.Write([]byte(stream[:30]))
	v.Write([]byte(stream[30:]))
	var loc *build.StepLocationDetail
	if failed {
		loc = failedLoc
	}
	v.finish(failed, loc)
	return out.String(), errOut.String()
}

// lastDraw is what a terminal shows of a redrawn line: the text after
// its last erase.
func lastDraws(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.LastIndex(l, "\x1b[2K"); i >= 0 {
			l = l[i+len("\x1b[2K"):]
		}
		lines = append(lines, l)
	}
	return lines
}

// TestBuildViewTTY: one line per step with CACHED or its time, the
// --explain reason under its step, no classic noise; the failing step's
// full output and its Dockerfile lines at the end.
func TestBuildViewTTY(t *testing.T) {
	out, errOut := renderStream(t, progressTTY, classicStream, true, "FROM busybox\nCOPY a.txt /a\nRUN make \\\n  all\n")
	got := lastDraws(out)
	want := []string{
		"[1/3] FROM busybox  0.2s",
		"[2/3] COPY a.txt /a  CACHED",
		"[3/3] RUN make  ERROR",
		"      cache miss: file /a sha256:1 changed (was sha256:2)",
		"------",
		" > [3/3] RUN make:",
		"compiling",
		"error: boom",
		"------",
		"Dockerfile:3-4",
		"--------------------",
		"   3 | >>> RUN make \\",
		"   4 | >>>   all",
		"--------------------",
		"",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tty view:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if errOut != "" {
		t.Errorf("tty view wrote to stderr: %q", errOut)
	}
	for _, noise := range []string{"Running in", "Removing intermediate", "12c9b1444c1f", "Step 1/3"} {
		if strings.Contains(out, noise) {
			t.Errorf("tty view shows %q:\n%s", noise, out)
		}
	}
	// A successful build: the held-back output is not shown.
	ok := strings.Replace(classicStream, "error: boom\n", "", 1) + "Successfully built 65814964f3a2\n"
	out, _ = renderStream(t, progressTTY, ok, false, "")
	if strings.Contains(out, "compiling") || !strings.Contains(out, "[3/3] RUN make  0.2s\n") || !strings.HasSuffix(out, "Successfully built 65814964f3a2\n") {
		t.Fatalf("successful tty build:\n%q", out)
	}
}

// TestBuildViewPlainAndQuiet: plain is the classic stream as sent, with
// the failed step's lines on stderr; quiet shows nothing on success and
// the failing step's output and lines on stderr.
func TestBuildViewPlainAndQuiet(t *testing.T) {
	out, errOut := renderStream(t, progressPlain, classicStream, true, "")
	if out != classicStream {
		t.Fatalf("plain view changed the stream:\n%q", out)
	}
	if want := "Dockerfile:3-4\n--------------------\n   3 | >>> RUN make\n--------------------\n"; errOut != want {
		t.Fatalf("plain view's location (no Dockerfile at hand):\n%q\nwant\n%q", errOut, want)
	}
	out, errOut = renderStream(t, progressQuiet, classicStream, false, "")
	if out != "" || errOut != "" {
		t.Fatalf("quiet success printed %q / %q", out, errOut)
	}
	out, errOut = renderStream(t, progressQuiet, classicStream, true, "")
	if out != "" || !strings.Contains(errOut, " > [3/3] RUN make:\ncompiling\nerror: boom\n") || !strings.Contains(errOut, "Dockerfile:3-4") {
		t.Fatalf("quiet failure printed %q / %q", out, errOut)
	}
}

func TestProgressMode(t *testing.T) {
	for _, c := range []struct {
		flag            string
		quiet, terminal bool
		want            string
	}{
		{"auto", false, true, progressTTY},
		{"auto", false, false, progressPlain},
		{"", false, true, progressTTY},
		{"plain", false, true, progressPlain},
		{"tty", false, false, progressTTY},
		{"quiet", false, true, progressQuiet},
		{"plain", true, true, progressQuiet},
	} {
		if got, err := progressMode(c.flag, c.quiet, c.terminal); err != nil || got != c.want {
			t.Errorf("progressMode(%q, quiet=%v, tty=%v) = %q, %v; want %q", c.flag, c.quiet, c.terminal, got, err, c.want)
		}
	}
	if _, err := progressMode("rawjson", false, true); err == nil {
		t.Error("--progress=rawjson was accepted")
	}
}
