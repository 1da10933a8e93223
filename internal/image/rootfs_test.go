package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRootfsVolatileAndWith: a volatile mount carries the option, leaves
// the layer mountable again, and the caller's records ride in the rootfs
// transactions.
func TestRootfsVolatileAndWith(t *testing.T) {
	requireRoot(t)
	s, _ := openStore(t)
	load(t, s, dockerArchive(t, testImage{tags: []string{"v"}, layers: [][]byte{layerTar(t, reg("base", "b"))}, cmd: "x"}))
	img, err := s.Resolve("v")
	if err != nil {
		t.Fatal(err)
	}
	bucket := []byte("callers")
	err = s.PrepareRootfsWith("v1", img, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte("v1"), []byte("record"))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.RemoveRootfs("v1") })
	target := t.TempDir()
	if err := s.MountRootfsVolatile("v1", img, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.UnmountRootfs(target) })
	if opts := mountOptions(t, target); !strings.Contains(opts, "volatile") {
		t.Errorf("mount options %q lack volatile", opts)
	}
	writeFile(t, filepath.Join(target, "new"), "data")
	if err := s.UnmountRootfs(target); err != nil {
		t.Fatal(err)
	}
	// The kernel's volatile marker would refuse this mount.
	if err := s.MountRootfs("v1", img, target); err != nil {
		t.Fatalf("mount again after a volatile mount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "new")); err != nil || string(b) != "data" {
		t.Errorf("file written under the volatile mount: %q %v", b, err)
	}
	if opts := mountOptions(t, target); strings.Contains(opts, "volatile") {
		t.Errorf("plain mount has options %q", opts)
	}
	if err := s.UnmountRootfs(target); err != nil {
		t.Fatal(err)
	}

	err = s.RemoveRootfsWith("v1", func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte("v1")) })
	if err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get([]byte("v1")); v != nil {
			t.Errorf("caller's record survived RemoveRootfsWith: %q", v)
		}
		if v := tx.Bucket(bucketRootfs).Get([]byte("v1")); v != nil {
			t.Errorf("rootfs record survived: %q", v)
		}
		return nil
	})
	if err := s.Delete(img.ID); err != nil {
		t.Errorf("image still in use after RemoveRootfsWith: %v", err)
	}
}

// mountOptions returns the super options of the mount at target.
func mountOptions(t *testing.T, target string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == target {
			return f[len(f)-1]
		}
	}
	t.Fatalf("%s is not a mount point", target)
	return ""
}
