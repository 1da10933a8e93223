package runtimecli

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The rest of the bad-input list through the CLI (TestBadInputExitsOne
// has the unknown id, capability and invalid config.json): each exits 1
// with a message naming the input, and leaves no container state behind.
func TestBadSpecsExitOne(t *testing.T) {
	c := newCLI(t, "true")
	defer func() { c.t = t }() // the clean-up runs c.run with the test's t
	for i, tc := range []struct {
		name string
		edit func(s *specs.Spec)
		want string
	}{
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "/no/such/rootfs" }, "/no/such/rootfs"},
		{"bad seccomp rule", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_EXPLODE"}}}
		}, "SCMP_ACT_EXPLODE"},
		{"refused cgroup limit", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1000-1001"}}
		}, "cpuset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.edit(func(s *specs.Spec) {
				s.Root.Path = "rootfs"
				s.Linux.Seccomp, s.Linux.Resources = nil, nil
				tc.edit(s)
			})
			id := "bad" + string(rune('a'+i))
			if _, stderr, code := c.run("run", id); code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("run: exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
			if out, _, _ := c.run("list", "-q"); strings.TrimSpace(out) != "" {
				t.Errorf("left behind in list: %q", out)
			}
			if ents, _ := os.ReadDir(c.root); len(ents) != 0 {
				t.Errorf("left behind in the state root: %v", ents)
			}
		})
	}
}
