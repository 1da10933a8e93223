package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// TestDistributionInspect: GET /distribution/{name}/json answers the
// descriptor and platforms the backend resolved, through the raw API and
// the official Go client, and a missing image is a 404 with its message.
func TestDistributionInspect(t *testing.T) {
	ts := startServer(t)
	code, _, body := ts.do(t, "GET", "/v1.47/distribution/reg:5000/multi:v1/json", "")
	if code != http.StatusOK {
		t.Fatalf("inspect: %d %s", code, body)
	}
	var res registry.DistributionInspect
	jsonBody(t, body, &res)
	if res.Descriptor.MediaType != "application/vnd.oci.image.index.v1+json" || res.Descriptor.Size != 321 ||
		len(res.Platforms) != 2 || res.Platforms[1].Variant != "v7" {
		t.Errorf("inspect answer: %s", body)
	}
	code, _, body = ts.do(t, "GET", "/v1.47/distribution/reg:5000/nosuch:v1/json", "")
	if code != http.StatusNotFound || !strings.Contains(body, "manifest unknown: reg:5000/nosuch:v1") {
		t.Errorf("missing image: %d %s", code, body)
	}

	cli := newClient(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := cli.DistributionInspect(ctx, "reg:5000/multi:v1", client.DistributionInspectOptions{EncodedRegistryAuth: "e30="})
	if err != nil || got.Descriptor.Digest.String() != "sha256:"+strings.Repeat("ab", 32) || len(got.Platforms) != 2 {
		t.Errorf("Go client DistributionInspect: %+v %v", got, err)
	}
}

// TestImageSearchNotSupported: /images/search says plainly that berth
// does not search registries (501), the way docker CLI users read it.
func TestImageSearchNotSupported(t *testing.T) {
	ts := startServer(t)
	code, _, body := ts.do(t, "GET", "/v1.47/images/search?term=busybox", "")
	if code != http.StatusNotImplemented || !strings.Contains(body, `"message":"image search: not implemented in berth yet"`) {
		t.Errorf("search: %d %s", code, body)
	}
}

// TestAuthEndpoint: POST /auth passes the credentials to the backend and
// answers docker's shape; a refusal is an error with the registry's words.
func TestAuthEndpoint(t *testing.T) {
	ts := startServer(t)
	code, _, body := ts.do(t, "POST", "/v1.47/auth", `{"username":"u","password":"p","serveraddress":"reg:5000"}`)
	if code != http.StatusOK || !strings.Contains(body, `"Status":"Login Succeeded"`) || !strings.Contains(body, `"IdentityToken":""`) {
		t.Errorf("auth: %d %s", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/auth", `{"username":"u","password":"wrong","serveraddress":"reg:5000"}`)
	if code < 400 || !strings.Contains(body, "401 Unauthorized") {
		t.Errorf("auth with a wrong password: %d %s", code, body)
	}
}
