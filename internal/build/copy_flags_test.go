package build

import "testing"

func TestParentsPath(t *testing.T) {
	for _, tc := range []struct{ src, rel, want string }{
		{"a/b/*.txt", "a/b/x.txt", "a/b/x.txt"},
		{"./a/./b/*.txt", "a/b/x.txt", "b/x.txt"},
		{"a/./b", "a/b", "b"},
		{"./x/./", "x", "."},
		{"/./y", "y", "y"},
	} {
		if got := parentsPath(tc.src, tc.rel); got != tc.want {
			t.Errorf("parentsPath(%q, %q) = %q, want %q", tc.src, tc.rel, got, tc.want)
		}
	}
}

func TestExcludeMatcher(t *testing.T) {
	ex, err := excludeMatcher([]string{"*.log", "!keep.log", "tmp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel, dir string
		want     bool
	}{
		{"a.log", "", true},
		{"keep.log", "", false},
		{"src/a.log", "src", true},
		{"src/a.go", "src", false},
		{"src/tmp/x", "src", true},
		{"deep/a.log", "", false},
	} {
		if got := ex(tc.rel, tc.dir); got != tc.want {
			t.Errorf("exclude(%q, %q) = %t, want %t", tc.rel, tc.dir, got, tc.want)
		}
	}
}

// TestMissingSourceMessages: a missing source names the context (and
// .dockerignore) only when it was looked for in the context; from a
// stage it is docker's plain stat error.
func TestMissingSourceMessages(t *testing.T) {
	fb := newFakeBackend(t)
	for df, want := range map[string]string{
		"FROM busybox AS a\nFROM busybox\nCOPY --from=a /nosuch /x\n": "COPY failed: stat nosuch: file does not exist in stage a (COPY --from=a)",
		"FROM busybox\nCOPY --from=busybox /nosuch /x\n":              "COPY failed: stat nosuch: file does not exist in image busybox (COPY --from=busybox)",
		"FROM busybox\nCOPY nosuch /x\n":                              "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist",
	} {
		_, out, err := buildText(t, fb, t.TempDir(), df)
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %q\n%s", df, err, want, out)
		}
	}
}
