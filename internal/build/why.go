package build

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// IgnoreRule is one pattern of a .dockerignore with its line number.
type IgnoreRule struct {
	Line    int
	Pattern string // as patternmatcher reads it (cleaned, "!" kept)
	Exclude bool   // false for a "!" exception
	m       *patternmatcher.PatternMatcher
}

// IgnoreVerdict says whether the context sends a path and which rule of
// .dockerignore decided it (Rule nil: no rule matched, or the path is the
// Dockerfile or .dockerignore, which are always sent).
type IgnoreVerdict struct {
	Path     string
	Excluded bool
	Rule     *IgnoreRule
	// Overruled are the earlier rules that matched too but lost to Rule.
	Overruled []IgnoreRule
	Always    bool // the Dockerfile or .dockerignore itself
}

// ReadIgnoreRules reads contextDir/.dockerignore with line numbers.
func ReadIgnoreRules(contextDir string) ([]IgnoreRule, error) {
	f, err := os.Open(filepath.Join(contextDir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules []IgnoreRule
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		// ignorefile's own reading of the one line: comments, blanks,
		// trimming and cleaning exactly as for the whole file.
		pats, err := ignorefile.ReadAll(strings.NewReader(sc.Text()))
		if err != nil {
			return nil, fmt.Errorf(".dockerignore line %d: %w", n, err)
		}
		for _, p := range pats {
			r := IgnoreRule{Line: n, Pattern: p, Exclude: !strings.HasPrefix(p, "!")}
			// A matcher of the positive form says whether the rule matches.
			if r.m, err = patternmatcher.New([]string{strings.TrimPrefix(p, "!")}); err != nil {
				return nil, fmt.Errorf(".dockerignore line %d: %q: %w", n, p, err)
			}
			rules = append(rules, r)
		}
	}
	return rules, sc.Err()
}

// WhyIgnored explains the fate of rel (slash-separated, relative to the
// context) as LoadIgnore decides it: the last rule that matches rel or
// one of its parents wins.
func WhyIgnored(rules []IgnoreRule, dockerfile, rel string) IgnoreVerdict {
	rel = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(rel)), "/")
	v := IgnoreVerdict{Path: rel}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if rel == ".dockerignore" || rel == filepath.ToSlash(filepath.Clean(dockerfile)) {
		v.Always = true
		return v
	}
	for i := range rules {
		r := &rules[i]
		m, err := r.m.MatchesOrParentMatches(filepath.FromSlash(rel))
		if err != nil || !m {
			continue
		}
		if v.Rule != nil {
			v.Overruled = append(v.Overruled, *v.Rule)
		}
		v.Rule, v.Excluded = r, r.Exclude
	}
	return v
}

// String is the explanation berth build --why prints.
func (v IgnoreVerdict) String() string {
	switch {
	case v.Always:
		return fmt.Sprintf("%s: included: the Dockerfile and .dockerignore are always sent", v.Path)
	case v.Rule == nil:
		return fmt.Sprintf("%s: included: no .dockerignore rule matches it", v.Path)
	}
	verb := "excluded"
	if !v.Excluded {
		verb = "included"
	}
	s := fmt.Sprintf("%s: %s by .dockerignore line %d: %s", v.Path, verb, v.Rule.Line, v.Rule.Pattern)
	for _, o := range v.Overruled {
		s += fmt.Sprintf("\n  (overrides line %d: %s)", o.Line, o.Pattern)
	}
	return s
}
