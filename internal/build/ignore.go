package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// LoadIgnore reads contextDir/.dockerignore and returns the matcher of
// context-relative, slash-separated paths it excludes. The Dockerfile and
// .dockerignore themselves are never excluded (docker sends them anyway).
func LoadIgnore(contextDir, dockerfile string) (func(rel string) bool, error) {
	f, err := os.Open(filepath.Join(contextDir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return func(string) bool { return false }, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("parse .dockerignore: %w", err)
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	keep := map[string]bool{".dockerignore": true, filepath.ToSlash(filepath.Clean(dockerfile)): true}
	return func(rel string) bool {
		rel = filepath.ToSlash(filepath.Clean(rel))
		if keep[rel] {
			return false
		}
		m, err := pm.MatchesOrParentMatches(filepath.FromSlash(rel))
		return err == nil && m
	}, nil
}
