package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// age sets a stored blob's mtime back, as if pushed long ago.
func (r *testRegistry) age(d digest.Digest, by time.Duration) {
	r.t.Helper()
	old := time.Now().Add(-by)
	if err := os.Chtimes(r.srv.blobs.path(d), old, old); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRegistry) blobStatus(repo string, d digest.Digest) int {
	r.t.Helper()
	resp, _ := r.do("GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
	return resp.StatusCode
}

func TestGCReclaimsDeletedManifestsBlobs(t *testing.T) {
	r := newTestRegistry(t, "")
	keep := r.pushImage("app", "v1", nil)
	drop := r.pushImage("app", "v2", nil)
	// An index over keep, pushed by digest only, in another repository,
	// and an artifact whose subject is keep: they keep what they refer to.
	r.pushMonolithic("other", keep.config)
	r.pushMonolithic("other", keep.layer)
	resp, body := r.do("PUT", "/v2/other/manifests/"+keep.desc.Digest.String(), map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, keep.manifest)
	r.expect(resp, body, http.StatusCreated)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{keep.desc}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	resp, body = r.do("PUT", "/v2/other/manifests/"+digest.FromBytes(ib).String(), map[string]string{"Content-Type": ocispec.MediaTypeImageIndex}, ib)
	r.expect(resp, body, http.StatusCreated)
	garbage := r.pushMonolithic("app", []byte("never referenced"))

	for _, im := range []image{keep, drop} {
		r.age(digest.FromBytes(im.config), 2*time.Hour)
		r.age(digest.FromBytes(im.layer), 2*time.Hour)
		r.age(im.desc.Digest, 2*time.Hour)
	}
	r.age(garbage, 2*time.Hour)
	r.age(digest.FromBytes(ib), 2*time.Hour)
	resp, body = r.do("DELETE", "/v2/app/manifests/"+drop.desc.Digest.String(), nil, nil)
	r.expect(resp, body, http.StatusAccepted)

	// drop's config is keep's too (pushImage's config is fixed): it stays.
	want := []digest.Digest{digest.FromBytes(drop.layer), drop.desc.Digest, garbage}
	slices.Sort(want)
	dry, err := r.srv.GC(context.Background(), GCOptions{Grace: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dry.Deleted)
	if !slices.Equal(dry.Deleted, want) {
		t.Fatalf("dry run would delete %v, want %v (drop %s garbage %s)", dry.Deleted, want, drop.desc.Digest, garbage)
	}
	if st := r.blobStatus("app", garbage); st != http.StatusOK {
		t.Fatalf("dry run removed a blob: status %d", st)
	}
	rep, err := r.srv.GC(context.Background(), GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Deleted)
	if !slices.Equal(rep.Deleted, want) || rep.Freed == 0 {
		t.Fatalf("gc deleted %v (%d bytes), want %v", rep.Deleted, rep.Freed, want)
	}
	for _, d := range want {
		if st := r.blobStatus("app", d); st != http.StatusNotFound {
			t.Errorf("swept blob %s: status %d, want 404", d, st)
		}
		if _, err := os.Stat(r.srv.blobs.path(d)); !os.IsNotExist(err) {
			t.Errorf("swept blob %s still on disk (%v)", d, err)
		}
	}
	for _, d := range []digest.Digest{digest.FromBytes(keep.config), digest.FromBytes(keep.layer)} {
		if st := r.blobStatus("app", d); st != http.StatusOK {
			t.Errorf("kept blob %s: status %d", d, st)
		}
	}
	for _, ref := range []string{"/v2/app/manifests/v1", "/v2/other/manifests/" + digest.FromBytes(ib).String()} {
		resp, body := r.do("GET", ref, nil, nil)
		r.expect(resp, body, http.StatusOK)
	}
}

// TestGCRacesPushes runs collections back to back while images are pushed:
// every push must succeed and stay whole, and old garbage must still go.
func TestGCRacesPushes(t *testing.T) {
	r := newTestRegistry(t, "")
	var garbage []digest.Digest
	for i := range 5 {
		d := r.pushMonolithic("junk", fmt.Appendf(nil, "garbage %d", i))
		r.age(d, 2*time.Hour)
		garbage = append(garbage, d)
	}
	// An old unreferenced blob that a pusher finds by HEAD and reuses.
	reused := make([]byte, 100)
	rand.Read(reused)
	reusedD := r.pushMonolithic("app0", reused)
	r.age(reusedD, 2*time.Hour)

	// The HEAD touches the blob: collections spare it for their grace.
	resp, body := r.do("HEAD", "/v2/app0/blobs/"+reusedD.String(), nil, nil)
	r.expect(resp, body, http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	var gcWG sync.WaitGroup
	gcWG.Add(1)
	var gcErr error
	runs := 0
	go func() {
		defer gcWG.Done()
		for ctx.Err() == nil {
			if _, err := r.srv.GC(ctx, GCOptions{Grace: time.Minute}); err != nil && ctx.Err() == nil {
				gcErr = err
				return
			}
			runs++
		}
	}()

	var images []image
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				repo := fmt.Sprintf("app%d", w)
				im := r.pushImage(repo, fmt.Sprintf("t%d", i), func(m *ocispec.Manifest) {
					if w == 0 && i == 0 {
						m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: reusedD, Size: int64(len(reused))})
					}
				})
				mu.Lock()
				images = append(images, im)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cancel()
	gcWG.Wait()
	if gcErr != nil {
		t.Fatal(gcErr)
	}
	if runs == 0 {
		t.Fatal("no collection ran during the pushes")
	}
	if _, err := r.srv.GC(context.Background(), GCOptions{Grace: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, im := range images {
		for _, d := range []digest.Digest{digest.FromBytes(im.config), digest.FromBytes(im.layer), im.desc.Digest} {
			if _, err := os.Stat(r.srv.blobs.path(d)); err != nil {
				t.Errorf("pushed blob %s lost: %v", d, err)
			}
		}
	}
	if st := r.blobStatus("app0", reusedD); st != http.StatusOK {
		t.Errorf("reused blob: status %d", st)
	}
	for _, d := range garbage {
		if st := r.blobStatus("junk", d); st != http.StatusNotFound {
			t.Errorf("garbage %s: status %d, want 404", d, st)
		}
	}
	t.Logf("%d collections ran during %d pushes", runs, len(images))
}

// TestRunGCThroughControlSocket is `berth registry gc` while a server runs.
func TestRunGCThroughControlSocket(t *testing.T) {
	r := newTestRegistry(t, "")
	d := r.pushMonolithic("app", []byte("garbage"))
	r.age(d, 2*time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.srv.ServeControl(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(controlSocket(r.root)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep, err := RunGC(context.Background(), r.root, GCOptions{Grace: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || len(rep.Deleted) != 1 || rep.Deleted[0] != d {
		t.Fatalf("dry run report %+v", rep)
	}
	rep, err = RunGC(context.Background(), r.root, GCOptions{Grace: time.Hour})
	if err != nil || len(rep.Deleted) != 1 {
		t.Fatalf("gc report %+v, %v", rep, err)
	}
	if st := r.blobStatus("app", d); st != http.StatusNotFound {
		t.Errorf("collected blob: status %d", st)
	}
}

// TestRunGCOffline collects a root no server holds.
func TestRunGCOffline(t *testing.T) {
	r := newTestRegistry(t, "")
	d := r.pushMonolithic("app", []byte("garbage"))
	r.age(d, 2*time.Hour)
	r.stop()
	rep, err := RunGC(context.Background(), r.root, GCOptions{Grace: time.Hour})
	if err != nil || len(rep.Deleted) != 1 || rep.Deleted[0] != d {
		t.Fatalf("gc report %+v, %v", rep, err)
	}
}
