package runtimecli

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

// TestOCIRuntimeValidation runs the OCI runtime-tools validation suite
// (v0.9.0) against berth-runtime through scripts/runtime-validation.sh
// --ci: the files runc passes on the development host (and a few where
// berth does better) must all pass. The first run on a machine builds the
// suite from the Go module proxy (2-3 minutes, cached in
// /var/cache/berth-suites); later runs take about 40 s. `make rtv` runs the
// whole suite against berth and runc side by side.
func TestOCIRuntimeValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OCI validation suite (40 s, plus 2-3 min to build it once)")
	}
	_, file, _, _ := goruntime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	runner := os.Getenv("RTV_RUNNER")
	if runner == "" {
		runner = filepath.Join(repo, "..", "shared", "suites", "runtime-validation.sh")
	}
	if _, err := os.Stat(runner); err != nil {
		t.Skipf("the shared suite runner is not here (%v); set RTV_RUNNER", err)
	}
	bin := berthBinary(t) // skips without root

	out := t.TempDir()
	cmd := exec.Command(filepath.Join(repo, "scripts", "runtime-validation.sh"), "--ci", out)
	cmd.Env = append(os.Environ(), "BERTH="+bin, "RTV_RUNNER="+runner)
	b, err := cmd.CombinedOutput()
	log := string(b)
	summary, _ := os.ReadFile(filepath.Join(out, "berth", "summary.txt"))
	if err != nil {
		t.Fatalf("runtime-validation --ci: %v\n%s\nper file:\n%s", err, log, summary)
	}
	lines := strings.Split(strings.TrimSpace(log), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "fail=0") || !strings.Contains(last, "broken=0") {
		t.Fatalf("unexpected summary %q\n%s", last, summary)
	}
	t.Log(last)
}
