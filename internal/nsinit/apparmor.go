package nsinit

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// appArmorEnabled reports whether the kernel enforces AppArmor.
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && bytes.HasPrefix(b, []byte("Y"))
}

// applyAppArmor makes the next execve of this thread enter profile. On a
// host without AppArmor the profile is ignored (nothing could enforce it,
// and the engine only asks for one where AppArmor exists); where AppArmor
// is on, failing to apply it fails the container.
func applyAppArmor(profile string) error {
	if profile == "" || !appArmorEnabled() {
		return nil
	}
	v := []byte("exec " + profile)
	// The per-LSM interface first (Linux 5.8+), then the legacy one.
	err := os.WriteFile("/proc/thread-self/attr/apparmor/exec", v, 0)
	if errors.Is(err, unix.ENOENT) {
		err = os.WriteFile("/proc/thread-self/attr/exec", v, 0)
	}
	if err != nil {
		return fmt.Errorf("apply AppArmor profile %q: %w", profile, err)
	}
	return nil
}
