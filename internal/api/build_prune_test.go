package api

import (
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// TestBuildPruneQuery checks how POST /build/prune reads its query: all,
// the until filter (a duration), the storage bounds of every API version,
// and that unknown filters and bad sizes are refused.
func TestBuildPruneQuery(t *testing.T) {
	ts := startServer(t)
	filters := url.QueryEscape(`{"until":{"24h":true}}`)
	for _, tc := range []struct {
		query    string
		code     int
		contains string
	}{
		{"", 200, `"CachesDeleted":["all=false until=0s keep=0"],"SpaceReclaimed":42`},
		{"all=1&filters=" + filters, 200, `all=true until=24h0m0s keep=0`},
		{"keep-storage=1000", 200, `keep=1000`},
		{"max-used-space=500&reserved-space=700", 200, `keep=500`},
		{"keep-storage=x", 400, "invalid keep-storage"},
		{"filters=" + url.QueryEscape(`{"label":{"a":true}}`), 400, "invalid filter"},
	} {
		code, _, body := ts.do(t, "POST", "/v1.47/build/prune?"+tc.query, "")
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("prune?%s: %d %q; want %d containing %q", tc.query, code, body, tc.code, tc.contains)
		}
	}
}

// TestBuildPlatformParam: POST /build?platform= names the engine's own
// platform or is refused before the build starts.
func TestBuildPlatformParam(t *testing.T) {
	ts := startServer(t)
	if code, _, body := ts.do(t, "POST", "/v1.47/build?platform=linux/s390x", ""); code != 400 || !strings.Contains(body, "containers only") {
		t.Errorf("foreign platform: %d %q", code, body)
	}
	// The fake backend does not build: reaching it is the 501.
	if code, _, body := ts.do(t, "POST", "/v1.47/build?platform=linux/"+runtime.GOARCH, ""); code != 501 {
		t.Errorf("own platform: %d %q", code, body)
	}
}
