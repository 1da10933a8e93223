package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// TestPullLayersConcurrently: the layers of a pull are downloaded at the
// same time. The registry double holds every layer GET until three are in
// flight (or 5 s pass); the pull must still succeed and must have had all
// three layers' requests open at once.
func TestPullLayersConcurrently(t *testing.T) {
	f := newFakeRegistry(t)
	ti := faultImage(t, tarOf(t, "a", "1"), tarOf(t, "b", "2"), tarOf(t, "c", "3"))
	f.put("v1", ti)
	layers := map[string]bool{}
	for _, l := range ti.layers {
		layers[digestOf(l)] = true
	}
	var mu sync.Mutex
	inFlight, most := 0, 0
	all := make(chan struct{})
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !layers[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] {
			return false
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == len(layers) {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return false
	})
	s, _, _ := faultStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := pullInto(ctx, New(Options{}), s, f.host+"/conc/app:v1"); err != nil {
		t.Fatal(err)
	}
	if most != len(layers) {
		t.Errorf("at most %d of %d layer downloads were in flight at once (took %v)", most, len(layers), time.Since(start))
	}
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
