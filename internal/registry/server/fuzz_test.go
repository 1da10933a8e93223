package server

import (
	"strings"
	"testing"
)

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/a/b/blobs/sha256:ab", "/v2/a/blobs/uploads/", "/v2/x/tags/list", "/v2//manifests/", "/v2/a/referrers/x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parseRoute(p)
		if !ok {
			return
		}
		if rt.name == "" || strings.Contains(rt.ref, "/") {
			t.Fatalf("parseRoute(%q) = %+v: empty name or slash in reference", p, rt)
		}
		if rt.kind != "uploads" && rt.kind != "tags" && rt.ref == "" {
			t.Fatalf("parseRoute(%q) = %+v: %s without reference", p, rt, rt.kind)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes 5-10/20", "10-5", "-1-3", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, err := parseContentRange(v)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d accepted", v, start, end)
		}
	})
}
