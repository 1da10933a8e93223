package cli

import "testing"

func TestSplitCpArg(t *testing.T) {
	for _, tc := range []struct{ in, ctr, path string }{
		{"c:/etc", "c", "/etc"},
		{"/abs:x", "", "/abs:x"},
		{"./rel:x", "", "./rel:x"},
		{"file", "", "file"},
		{"c:", "c", ""},
	} {
		if c, p := splitCpArg(tc.in); c != tc.ctr || p != tc.path {
			t.Errorf("splitCpArg(%q) = %q, %q", tc.in, c, p)
		}
	}
}

// TestPrepareCopy walks docker's table of where a copy lands.
func TestPrepareCopy(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		src, dst                   copyInfo
		dir, oldBase, newBase, err string
	}{
		{"into dir", copyInfo{path: "/s/f"}, copyInfo{path: "/d", exists: true, isDir: true}, "/d", "", "", ""},
		{"onto file", copyInfo{path: "/s/f"}, copyInfo{path: "/d/g", exists: true}, "/d", "f", "g", ""},
		{"dir onto file", copyInfo{path: "/s/d", isDir: true}, copyInfo{path: "/d/g", exists: true}, "", "", "", "cannot copy directory"},
		{"dir to new", copyInfo{path: "/s/d", isDir: true}, copyInfo{path: "/d/n"}, "/d", "d", "n", ""},
		{"dir contents to new", copyInfo{path: "/s/d/.", isDir: true}, copyInfo{path: "/d/n/"}, "/d", ".", "n", ""},
		{"file to new dir/", copyInfo{path: "/s/f"}, copyInfo{path: "/d/n/"}, "", "", "", "no such directory"},
		{"file to new", copyInfo{path: "/s/f"}, copyInfo{path: "/d/n"}, "/d", "f", "n", ""},
		{"rebased", copyInfo{path: "/s/target", rebaseName: "link"}, copyInfo{path: "/d/n"}, "/d", "link", "n", ""},
	} {
		dir, ob, nb, err := prepareCopy(tc.src, tc.dst)
		es := ""
		if err != nil {
			es = err.Error()
		}
		if dir != tc.dir || ob != tc.oldBase || nb != tc.newBase || es != tc.err {
			t.Errorf("%s: got %q %q %q %q", tc.name, dir, ob, nb, es)
		}
	}
}
