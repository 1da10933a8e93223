package integration

import (
	"regexp"
	"strings"
	"testing"
)

// TestBuildProgressTTY: on a terminal berth build shows one line per step
// (number, instruction, CACHED or its time), not the classic stream; a
// failing step's full output and its Dockerfile line come at the end,
// and the RUN's exit code is the CLI's.
func TestBuildProgressTTY(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo held back; \\\n  cat /a.txt\n",
		"a.txt":      "tty-" + uniq(t) + "\n",
	})
	s := e.startPTY(t, 24, 100, e.bin, "build", dir)
	if code := s.exitCode(); code != 0 {
		t.Fatalf("build on a terminal: exit %d\n%q", code, s.output())
	}
	s.expect("Successfully built") // the last of it read from the pty
	out := s.output()
	for _, re := range []string{`\[1/3\] FROM busybox`, `\[2/3\] COPY a\.txt /a\.txt  \d+\.\ds`, `\[3/3\] RUN echo held back;.*  \d+\.\ds`, `Successfully built [0-9a-f]{12}`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("terminal view lacks %s:\n%q", re, out)
		}
	}
	for _, noise := range []string{"Step 1/3", "Running in", "held back\r\n"} {
		if strings.Contains(out, noise) {
			t.Errorf("terminal view shows %q:\n%q", noise, out)
		}
	}
	s = e.startPTY(t, 24, 100, e.bin, "build", dir)
	if code := s.exitCode(); code != 0 {
		t.Fatalf("rebuild: exit %d\n%q", code, s.output())
	}
	s.expect("Successfully built")
	if n := strings.Count(s.output(), "  CACHED"); n != 2 {
		t.Errorf("rebuild shows CACHED %d times, want 2 (COPY and RUN):\n%q", n, s.output())
	}

	fail := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo first line; \\\n  echo second line >&2; exit 7\nLABEL never=1\n"})
	s = e.startPTY(t, 24, 100, e.bin, "build", fail)
	if code := s.exitCode(); code != 7 {
		t.Fatalf("failing build on a terminal: exit %d, want 7\n%q", code, s.output())
	}
	s.expect("returned a non-zero code: 7")
	out = s.output()
	for _, want := range []string{"[2/3] RUN echo first line;", "ERROR", "first line\r\n", "second line\r\n",
		"Dockerfile:2-3", "   2 | >>> RUN echo first line; \\", "   3 | >>>   echo second line >&2; exit 7", "returned a non-zero code: 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("failing build's terminal output lacks %q:\n%q", want, out)
		}
	}
	if strings.Contains(out, "[3/3]") || strings.Contains(out, "Usage:") {
		t.Errorf("failing build went on or printed its usage:\n%q", out)
	}
}

// TestBuildProgressPlainQuiet: off a terminal (and with --progress=plain)
// the output is docker's classic stream; -q and --progress=quiet print
// only the image ID, and on failure the failing step's output and line on
// stderr.
func TestBuildProgressPlainQuiet(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo plain-" + uniq(t) + "\n"})
	for _, args := range [][]string{{"build", dir}, {"build", "--progress=plain", "--no-cache", dir}} {
		r := must(t, e.berth(t, args...))
		if !strings.Contains(r.stdout, "Step 1/2 : FROM busybox\n") || !strings.Contains(r.stdout, "Step 2/2 : RUN echo plain-") ||
			!strings.Contains(r.stdout, "Successfully built ") {
			t.Fatalf("berth %v: not the classic stream:\n%s", args, r.stdout)
		}
	}
	idRE := regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)
	for _, q := range []string{"-q", "--progress=quiet"} {
		r := must(t, e.berth(t, "build", q, dir))
		if !idRE.MatchString(r.stdout) || r.stderr != "" {
			t.Fatalf("build %s printed %s", q, r)
		}
	}
	fail := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo quiet-out; exit 4\n"})
	r := e.berth(t, "build", "-q", fail)
	if r.code != 4 || r.stdout != "" {
		t.Fatalf("failing build -q: %s", r)
	}
	for _, want := range []string{" > [2/2] RUN echo quiet-out; exit 4:\nquiet-out\n", "Dockerfile:2\n", "   2 | >>> RUN echo quiet-out; exit 4\n",
		"returned a non-zero code: 4"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("failing build -q: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	r = e.berth(t, "build", "--progress=fancy", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "invalid --progress") {
		t.Errorf("--progress=fancy: %s", r)
	}
}

// TestBuildDaemonErrorOnly: a build the daemon refuses before it starts
// (a Dockerfile parse error, an unknown instruction) prints the error
// only, like docker — no usage text — and exits 1.
func TestBuildDaemonErrorOnly(t *testing.T) {
	e := daemonEnv(t)
	for df, msg := range map[string]string{
		"FROM busybox\nCOPY a\n":   "dockerfile parse error line 2: COPY requires at least two arguments",
		"FROM busybox\nBOGUS x\n":  "dockerfile parse error line 2: unknown instruction: BOGUS",
		"FROM busybox\nRUN true\n": "",
	} {
		dir := writeContext(t, map[string]string{"Dockerfile": df})
		r := e.berth(t, "build", dir)
		if msg == "" {
			must(t, r)
			continue
		}
		want := "Error response from daemon: " + msg
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || strings.Contains(r.stderr, "Usage") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: %s\nwant only %q, exit 1", df, r, want)
		}
	}
}

// TestBuildCopyFromMissing: a COPY --from source that does not exist is
// reported in the stage or image it was looked for, not the context.
func TestBuildCopyFromMissing(t *testing.T) {
	e := daemonEnv(t)
	for df, want := range map[string]string{
		"FROM busybox AS src\nRUN true\nFROM busybox\nCOPY --from=src /nosuch /x\n": "COPY failed: stat nosuch: file does not exist in stage src (COPY --from=src)",
		"FROM busybox\nCOPY --from=busybox /nosuch /x\n":                            "COPY failed: stat nosuch: file does not exist in image busybox (COPY --from=busybox)",
	} {
		dir := writeContext(t, map[string]string{"Dockerfile": df})
		for _, cli := range []func(*testing.T, ...string) result{e.berth, e.docker} {
			r := cli(t, "build", dir)
			if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "build context") {
				t.Errorf("%q: %s\nwant %q", df, r, want)
			}
		}
	}
}

// TestBuildNetworkMode: --network none leaves a RUN step only loopback;
// the default gives it the bridge's interface; host, the host's (the
// daemon's bridge among them).
func TestBuildNetworkMode(t *testing.T) {
	e := daemonEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo ifaces: $(cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort | tr '\\n' ,)\n"})
	r := must(t, e.berth(t, "build", "--no-cache", "--progress=plain", "--network", "none", dir))
	if !strings.Contains(r.stdout, "ifaces: lo,\n") {
		t.Fatalf("--network none: RUN saw other interfaces:\n%s", r.stdout)
	}
	r = must(t, e.berth(t, "build", "--no-cache", "--progress=plain", dir))
	if !regexp.MustCompile(`ifaces: (eth0,lo,|lo,eth0,)\n`).MatchString(r.stdout) {
		t.Fatalf("default network: RUN's interfaces:\n%s", r.stdout)
	}
	bridge, _ := testBridge(e.dir)
	r = must(t, e.berth(t, "build", "--no-cache", "--progress=plain", "--network", "host", dir))
	if !regexp.MustCompile(`ifaces: .*\b` + regexp.QuoteMeta(bridge) + `,`).MatchString(r.stdout) {
		t.Fatalf("--network host: RUN does not see the host's %s:\n%s", bridge, r.stdout)
	}
	r = must(t, e.docker(t, "build", "--no-cache", "--network", "none", dir))
	if !strings.Contains(r.stdout, "ifaces: lo,\n") {
		t.Fatalf("docker build --network none: RUN saw other interfaces:\n%s", r.stdout)
	}
}
