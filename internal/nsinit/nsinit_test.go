package nsinit

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	flags, prop, data, err := ParseMountOptions([]string{"nosuid", "ro", "rw", "rbind", "rprivate", "mode=755", "size=64k"})
	if err != nil {
		t.Fatal(err)
	}
	if want := unix.MS_NOSUID | unix.MS_BIND | unix.MS_REC; flags != want {
		t.Errorf("flags %#x, want %#x (rw clears ro)", flags, want)
	}
	if len(prop) != 1 || prop[0] != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("propagation %v", prop)
	}
	if data != "mode=755,size=64k" {
		t.Errorf("data %q", data)
	}
	if _, _, _, err := ParseMountOptions([]string{"idmap"}); err == nil {
		t.Error("idmap accepted")
	}
}

func TestCapabilities(t *testing.T) {
	if n, ok := CapNumber("CAP_SYS_ADMIN"); !ok || n != 21 {
		t.Errorf("CAP_SYS_ADMIN = %d %v", n, ok)
	}
	if n, ok := CapNumber("net_raw"); !ok || n != 13 {
		t.Errorf("net_raw = %d %v", n, ok)
	}
	if err := ValidateCaps(&specs.LinuxCapabilities{Effective: []string{"CAP_FLY"}}); err == nil {
		t.Error("CAP_FLY accepted")
	}
	lo, hi, _ := capMask([]string{"CAP_CHOWN", "CAP_KILL", "CAP_BPF"})
	if lo != 1|1<<5 || hi != 1<<(39-32) {
		t.Errorf("mask %#x %#x", lo, hi)
	}
}
