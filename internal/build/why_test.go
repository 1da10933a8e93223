package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWhyIgnored names the deciding .dockerignore line for each path and
// always agrees with LoadIgnore, the matcher the build uses.
func TestWhyIgnored(t *testing.T) {
	dir := t.TempDir()
	ignore := "# comment\n\n*.log\n!keep.log\nbuild/\n**/*.tmp\n!build/keep/**\nDockerfile\n"
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := ReadIgnoreRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 6 || rules[0].Line != 3 || rules[5].Line != 8 {
		t.Fatalf("rules %+v", rules)
	}
	matcher, err := LoadIgnore(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"app.log", "app.log: excluded by .dockerignore line 3: *.log"},
		{"keep.log", "keep.log: included by .dockerignore line 4: !keep.log\n  (overrides line 3: *.log)"},
		{"sub/app.log", "sub/app.log: included: no .dockerignore rule matches it"},
		{"build/out/x", "build/out/x: excluded by .dockerignore line 5: build"},
		{"build/keep/a", "build/keep/a: included by .dockerignore line 7: !build/keep/**\n  (overrides line 5: build)"},
		{"a/b/c.tmp", "a/b/c.tmp: excluded by .dockerignore line 6: **/*.tmp"},
		{"Dockerfile", "Dockerfile: included: the Dockerfile and .dockerignore are always sent"},
		{"./src/../app.log", "app.log: excluded by .dockerignore line 3: *.log"},
	} {
		v := WhyIgnored(rules, "Dockerfile", tc.path)
		if got := v.String(); got != tc.want {
			t.Errorf("why %s:\n got %q\nwant %q", tc.path, got, tc.want)
		}
		if v.Excluded != matcher(v.Path) {
			t.Errorf("why %s says excluded=%t, the build's matcher %t", tc.path, v.Excluded, matcher(v.Path))
		}
	}
	if !strings.Contains(WhyIgnored(nil, "", "x").String(), "no .dockerignore rule") {
		t.Error("no rules: want included")
	}
}
