package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
)

// TestDistributionConformance runs the OCI distribution-spec conformance
// suite (default v1.1 settings) against `berth registry serve` through
// scripts/distribution-conformance.sh: no failure is allowed. The first run
// on a machine builds the suite from the Go module proxy (under a minute,
// cached in /var/cache/berth-suites).
func TestDistributionConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OCI distribution conformance suite (about 20 s, plus a one-time build)")
	}
	_, file, _, _ := goruntime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	runner := os.Getenv("DIST_CONF_RUNNER")
	if runner == "" {
		runner = filepath.Join(repo, "..", "shared", "suites", "distribution-conformance.sh")
	}
	if _, err := os.Stat(runner); err != nil {
		t.Skipf("the shared suite runner is not here (%v); set DIST_CONF_RUNNER", err)
	}
	cmd := exec.Command(filepath.Join(repo, "scripts", "distribution-conformance.sh"))
	cmd.Env = append(os.Environ(), "DIST_CONF_RUNNER="+runner, "DIST_CONF_OUTDIR="+t.TempDir())
	b, err := cmd.CombinedOutput()
	out := strings.TrimSpace(string(b))
	lines := strings.Split(out, "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`pass=(\d+) fail=(\d+) skip=(\d+) total=(\d+)`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no summary line (err %v):\n%s", err, out)
	}
	pass, _ := strconv.Atoi(m[1])
	if m[2] != "0" || err != nil || pass < 800 {
		t.Fatalf("conformance: %s (err %v)\n%s", last, err, out)
	}
	t.Log(last)
}
