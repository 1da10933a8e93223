package build

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
)

// COPY/ADD --exclude and COPY --parents, as BuildKit defines them.

// excludeMatcher is --exclude: .dockerignore-style patterns, matched
// against a path relative to the context (or --from root) and against
// the path relative to the source directory being copied.
func excludeMatcher(patterns []string) (func(rel, srcDir string) bool, error) {
	if len(patterns) == 0 {
		return func(string, string) bool { return false }, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("--exclude %q: %w", patterns, err)
	}
	match := func(p string) bool {
		m, err := pm.MatchesOrParentMatches(filepath.FromSlash(p))
		return err == nil && m
	}
	return func(rel, srcDir string) bool {
		if match(rel) {
			return true
		}
		if srcDir != "" && srcDir != "." && strings.HasPrefix(rel, srcDir+"/") {
			return match(strings.TrimPrefix(rel, srcDir+"/"))
		}
		return false
	}, nil
}

// parentsPath is where COPY --parents puts a matched source: its path
// relative to the context, or, when the source has a "/./" pivot
// (./a/./b/*.txt), relative to the pivot.
func parentsPath(src, rel string) string {
	s := filepath.ToSlash(src)
	i := strings.Index(s, "/./")
	if i < 0 {
		return rel
	}
	prefix := strings.TrimPrefix(path.Clean("/"+s[:i]), "/")
	if prefix == "" {
		return rel
	}
	if rel == prefix {
		return "."
	}
	return strings.TrimPrefix(rel, prefix+"/")
}

// missingSourceError is a COPY source that does not exist: in the
// context (docker's message names .dockerignore) or in the stage or image
// of --from.
type missingSourceError struct {
	src, from string
	stage     bool // from names a stage of this Dockerfile, not an image
}

func (e *missingSourceError) Error() string {
	if e.from != "" {
		// docker's words, then where the file was looked for: the
		// context is not involved, the stage or image is.
		where := "image"
		if e.stage {
			where = "stage"
		}
		return fmt.Sprintf("COPY failed: stat %s: file does not exist in %s %s (COPY --from=%s)",
			strings.TrimPrefix(path.Clean("/"+e.src), "/"), where, e.from, e.from)
	}
	return fmt.Sprintf("COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", e.src)
}
