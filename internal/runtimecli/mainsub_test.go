package runtimecli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMainSub: `berth runtime` without the rest of berth's commands keeps
// the verbs, the global flags and the exit codes.
func TestMainSub(t *testing.T) {
	root := t.TempDir()
	if code := MainSub([]string{"--root", root, "state", "nope"}); code != 1 {
		t.Errorf("state of an unknown container: exit %d; want 1", code)
	}
	if code := MainSub([]string{"--root", root, "--no-such-flag", "list"}); code != 1 {
		t.Errorf("unknown flag: exit %d; want 1", code)
	}
	bundle := t.TempDir()
	if code := MainSub([]string{"--root", root, "spec", "--bundle", bundle}); code != 0 {
		t.Fatalf("spec: exit %d; want 0", code)
	}
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		t.Errorf("spec wrote no config.json: %v", err)
	}
}
