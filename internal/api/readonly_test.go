package api

import (
	"context"
	"strings"
	"testing"
)

// TestReadOnlyForceRecursiveNeedsAPI144: recursive read-only binds came with
// API 1.44; an older client that asks to force them is refused (dockerd
// does not silently ignore it), a 1.44 one is not.
func TestReadOnlyForceRecursiveNeedsAPI144(t *testing.T) {
	ts := startServer(t)
	body := `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/m","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`
	const msg = "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"
	if code, _, out := ts.do(t, "POST", "/v1.43/containers/create", body); code != 400 || !strings.Contains(out, msg) {
		t.Errorf("API 1.43 create with ReadOnlyForceRecursive: %d %q; want 400 %q", code, out, msg)
	}
	if _, _, out := ts.do(t, "POST", "/v1.44/containers/create", body); strings.Contains(out, msg) {
		t.Errorf("API 1.44 create with ReadOnlyForceRecursive refused: %q", out)
	}
}

// TestVersionBefore: the backend learns the request's API version through
// the context; calls that did not come through the API are not "old".
func TestVersionBefore(t *testing.T) {
	for _, tc := range []struct {
		have string
		want bool
	}{{"", false}, {"1.43", true}, {"1.24", true}, {"1.44", false}, {"1.47", false}} {
		ctx := context.Background()
		if tc.have != "" {
			ctx = context.WithValue(ctx, versionKey{}, tc.have)
		}
		if got := VersionBefore(ctx, "1.44"); got != tc.want {
			t.Errorf("VersionBefore(%q, 1.44) = %v, want %v", tc.have, got, tc.want)
		}
	}
}
