package runtimecli

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"

	"berth/internal/nsinit"
)

// featuresCmd is `runc features`: what this runtime implements, as the
// runtime-spec features document, for callers that adapt to the runtime
// (containerd, podman).
func featuresCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "show the runtime's implemented features (runtime-spec features JSON)",
		Args:  exactArgs(0, "features"),
		RunE: func(c *cobra.Command, _ []string) error {
			return writeJSON(c.OutOrStdout(), featureSet())
		},
	}
}

func featureSet() *features.Features {
	yes, no := true, false
	_, v1err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	v2 := v1err == nil
	v1 := !v2
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  nsinit.MountOptionNames(),
		Linux: &features.Linux{
			// No time namespace; a user namespace only as a new one.
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			Capabilities: nsinit.CapNames(),
			Cgroup:       &features.Cgroup{V1: &v1, V2: &v2, Systemd: &no, SystemdUser: &no},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{
					"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
				},
				Operators: []string{
					"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
				},
				Archs: []string{
					"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_PPC64LE",
					"SCMP_ARCH_RISCV64", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
				},
				KnownFlags: []string{
					"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
					"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
				},
			},
			// Applied where the kernel has AppArmor; SELinux labels are not.
			Apparmor: &features.Apparmor{Enabled: &yes},
			Selinux:  &features.Selinux{Enabled: &no},
		},
	}
}
