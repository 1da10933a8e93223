package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection checks the architecture instead of hoping for it
// (STYLE.md #12): lower layers never import upper ones.
func TestDependencyDirection(t *testing.T) {
	forbidden := map[string][]string{
		// the runtime is usable on its own (runc-compatible CLI, podman)
		"berth/internal/runtime":  {"berth/internal/api", "berth/internal/daemon", "berth/internal/cli", "berth/internal/image", "berth/internal/keeper"},
		"berth/internal/nsinit":   {"berth/internal/api", "berth/internal/daemon", "berth/internal/cli", "berth/internal/image", "berth/internal/runtime"},
		"berth/internal/seccomp":  {"berth/internal/runtime", "berth/internal/daemon", "berth/internal/api"},
		"berth/internal/cgroups":  {"berth/internal/runtime", "berth/internal/daemon", "berth/internal/api"},
		"berth/internal/keeper":   {"berth/internal/api", "berth/internal/daemon", "berth/internal/cli"},
		"berth/internal/image":    {"berth/internal/api", "berth/internal/daemon", "berth/internal/cli", "berth/internal/runtime", "berth/internal/keeper"},
		"berth/internal/snapshot": {"berth/internal/image", "berth/internal/daemon", "berth/internal/api"},
		"berth/internal/archive":  {"berth/internal/image", "berth/internal/daemon", "berth/internal/api"},
		"berth/internal/content":  {"berth/internal/image", "berth/internal/daemon", "berth/internal/api"},
		// the HTTP layer knows the daemon only through its Backend interface
		"berth/internal/api": {"berth/internal/daemon", "berth/internal/runtime", "berth/internal/keeper", "berth/internal/image"},
		// the CLI is a pure Engine API client
		"berth/internal/cli":     {"berth/internal/daemon", "berth/internal/runtime", "berth/internal/image", "berth/internal/keeper", "berth/internal/api"},
		"berth/internal/specgen": {"berth/internal/daemon", "berth/internal/api", "berth/internal/runtime"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range bad {
			if deps[b] {
				t.Errorf("%s imports %s (directly or not): the dependency points the wrong way", pkg, b)
			}
		}
	}
}
