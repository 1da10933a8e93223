package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestArchiveRoutes checks the wire form of the archive endpoints: the
// base64 JSON stat header on HEAD and GET, the tar body, 200 on PUT and 404
// for a missing path.
func TestArchiveRoutes(t *testing.T) {
	ts := startServer(t)
	ts.createContainer(t, "cp1", `{"Image":"busybox","Cmd":["sleep"]}`)
	decode := func(h http.Header) container.PathStat {
		t.Helper()
		var st container.PathStat
		b, err := base64.StdEncoding.DecodeString(h.Get("X-Docker-Container-Path-Stat"))
		if err != nil {
			t.Fatalf("stat header: %v", err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("stat header %s: %v", b, err)
		}
		return st
	}
	code, h, body := ts.do(t, "HEAD", "/v1.47/containers/cp1/archive?path=%2Ftmp%2F", "")
	if st := decode(h); code != 200 || body != "" || st.Name != "tmp" || !st.Mode.IsDir() || st.Mode&os.ModeType != os.ModeDir {
		t.Errorf("HEAD: %d %q %+v", code, body, st)
	}
	code, h, body = ts.do(t, "GET", "/v1.47/containers/cp1/archive?path=/tmp", "")
	if st := decode(h); code != 200 || body != "TAR" || h.Get("Content-Type") != "application/x-tar" || st.Name != "tmp" {
		t.Errorf("GET: %d %q %v", code, body, h)
	}
	code, _, body = ts.do(t, "PUT", "/v1.47/containers/cp1/archive?path=/tmp&noOverwriteDirNonDir=true", "x")
	if code != 200 || body != "" {
		t.Errorf("PUT: %d %q", code, body)
	}
	code, h, body = ts.do(t, "GET", "/v1.47/containers/cp1/archive?path=/nonexistent", "")
	if code != 404 || h.Get("X-Docker-Container-Path-Stat") != "" || body != `{"message":"Could not find the file /nonexistent in container cp1"}`+"\n" {
		t.Errorf("GET missing: %d %q", code, body)
	}
	if code, _, _ = ts.do(t, "HEAD", "/v1.47/containers/cp1/archive?path=/nonexistent", ""); code != 404 {
		t.Errorf("HEAD missing: %d", code)
	}
	if code, _, _ = ts.do(t, "POST", "/v1.47/containers/cp1/archive?path=/tmp", ""); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}
}
