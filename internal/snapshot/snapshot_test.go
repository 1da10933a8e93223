package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

func TestCreateOnceUnderRace(t *testing.T) {
	root := t.TempDir()
	s, err := Open(filepath.Join(root, "snapshots"), filepath.Join(root, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	chain := digest.FromString("layer")
	var fills atomic.Int32
	fill := func(diff string) (digest.Digest, error) {
		fills.Add(1)
		time.Sleep(20 * time.Millisecond)
		return chain, os.WriteFile(filepath.Join(diff, "f"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	var created atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.Create(context.Background(), chain, fill)
			if err != nil {
				t.Error(err)
			}
			if c {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if fills.Load() != 1 || created.Load() != 1 {
		t.Errorf("fills %d created %d, want 1 and 1", fills.Load(), created.Load())
	}
	if !s.Exists(chain) {
		t.Error("snapshot missing")
	}
	// A failed fill leaves nothing; the next caller tries again.
	other := digest.FromString("other")
	_, _, err = s.Create(context.Background(), other, func(string) (digest.Digest, error) { return "", errors.New("boom") })
	if err == nil || s.Exists(other) {
		t.Fatal("failed create visible")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	if len(ents) != 1 {
		t.Errorf("debris: %v", ents)
	}
	if n, err := s.Remove(chain); err != nil || n <= 0 || s.Exists(chain) {
		t.Errorf("remove: %d %v", n, err)
	}
}

func TestOpenRemovesHalfMade(t *testing.T) {
	root := t.TempDir()
	half := digest.FromString("half")
	os.MkdirAll(filepath.Join(root, ingestPrefix+"x", "diff"), 0o755)
	os.MkdirAll(filepath.Join(root, half.Encoded(), "diff"), 0o755)
	if _, err := Open(root, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
}
