package server

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsStayOutOfTheEngine keeps the registry server a standalone
// component (STYLE.md 12): it may not import the daemon, the Engine API,
// the runtime or any other berth package, so `berth registry serve` can be
// split out or reused without dragging the engine along.
func TestImportsStayOutOfTheEngine(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"berth/internal/errdefs": true}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "berth/") && !allowed[imp] {
			t.Errorf("registry server imports %s", imp)
		}
	}
}
