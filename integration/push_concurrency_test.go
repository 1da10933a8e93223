package integration

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPushLayersConcurrently: a push uploads its layers at the same time.
// A proxy in front of berth's registry holds each blob upload's final PUT
// until two are in flight (or 5 s pass); the push of a two-layer image
// must have had both open at once, and must still succeed.
func TestPushLayersConcurrently(t *testing.T) {
	e := daemonEnv(t)
	src := startPlainRegistry(t, e)
	dst := startPlainRegistry(t, e)
	ref := src.addr + "/pc/app:v1"
	pushBusybox(t, ref)
	t.Cleanup(func() { e.berth(t, "rmi", "-f", ref) })
	must(t, e.berth(t, "pull", ref))

	u, _ := url.Parse("http://" + dst.addr)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	inFlight, most := 0, 0
	two := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if inFlight == 2 {
				close(two)
			}
			mu.Unlock()
			select {
			case <-two:
			case <-time.After(5 * time.Second):
			}
			defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	out := strings.TrimPrefix(front.URL, "http://") + "/pc/app:v1"
	must(t, e.berth(t, "tag", ref, out))
	t.Cleanup(func() { e.berth(t, "rmi", out) })
	r := must(t, e.berth(t, "push", out))
	wantAll(t, "push through the proxy", r.stdout, ": Pushed\n", "v1: digest: sha256:")
	mu.Lock()
	defer mu.Unlock()
	if most < 2 {
		t.Errorf("at most %d blob upload was in flight at once; the two layers went one after the other", most)
	}
}
