package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// With Options.Explain, every step that misses the cache says why: the
// first of its inputs that differs from the last build of the same
// instruction at the same step. The inputs are kept in the Cache itself,
// under "explain/" keys, as a JSON list of "kind value" lines in a fixed
// order: the base (parent image), the instruction, the visible ARG/ENV
// values, then each copied file with the hash of its content.

// stepInputs lists a step's inputs; files are "file PATH sha256:HEX".
func (b *builder) stepInputs(st *stageState, text string, files []string) []string {
	in := []string{"base " + st.img.ID, "instruction " + text}
	env := st.env()
	slices.Sort(env)
	for _, e := range env {
		in = append(in, "env "+e)
	}
	return append(in, files...)
}

func (b *builder) explainKey(text string) string {
	sum := sha256.Sum256([]byte(text))
	return fmt.Sprintf("explain/%d/%s", b.step, hex.EncodeToString(sum[:8]))
}

// explainMiss prints why the step missed the cache.
func (b *builder) explainMiss(text string, now []string) {
	if !b.opts.Explain || b.cache == nil {
		return
	}
	if b.opts.NoCache {
		fmt.Fprintf(b.out, " ---> cache miss: --no-cache\n")
		return
	}
	raw, ok := b.cache.Lookup(b.explainKey(text))
	var before []string
	if !ok || json.Unmarshal([]byte(raw), &before) != nil {
		fmt.Fprintf(b.out, " ---> cache miss: no earlier build of this instruction at step %d\n", b.step)
		return
	}
	fmt.Fprintf(b.out, " ---> cache miss: %s\n", firstDifference(before, now))
}

// firstDifference describes the first input of now that is not in
// before, or the first one before had that now lacks.
func firstDifference(before, now []string) string {
	old := map[string]string{} // "kind name" -> whole line
	for _, l := range before {
		old[inputName(l)] = l
	}
	for _, l := range now {
		prev, ok := old[inputName(l)]
		switch {
		case !ok:
			return "new " + l
		case prev != l:
			return fmt.Sprintf("%s changed (was %s)", l, strings.TrimPrefix(prev, inputName(l)))
		}
	}
	seen := map[string]bool{}
	for _, l := range now {
		seen[inputName(l)] = true
	}
	for _, l := range before {
		if !seen[inputName(l)] {
			return "no longer " + l
		}
	}
	return "inputs unchanged (the cached image is gone)"
}

// inputName is what identifies an input line: its kind and, for env and
// file, the variable or path.
func inputName(l string) string {
	kind, rest, _ := strings.Cut(l, " ")
	switch kind {
	case "env":
		k, _, _ := strings.Cut(rest, "=")
		return kind + " " + k + "="
	case "file":
		p, _, _ := strings.Cut(rest, " ")
		return kind + " " + p + " "
	}
	return kind + " "
}

// rememberInputs keeps the inputs of a step, whether it ran or was a
// cache hit, on every build (not only --explain ones), so that the next
// build's --explain always has the last build to compare with. The Cache
// is expected to make this cheap (the daemon's batches the writes of a
// build into one transaction).
func (b *builder) rememberInputs(text string, in []string) {
	if b.cache == nil {
		return
	}
	raw, _ := json.Marshal(in)
	b.cache.Store(b.explainKey(text), string(raw))
}

// setInputs hashes a COPY layer the way docker's classic builder keys its
// cache: every entry's path, type, mode, owner, size and link target, and
// each regular file's content — but not mtimes, so touching a file (or an
// ignored sibling changing its directory's mtime) keeps the cache. It
// returns the hex digest of all of it and, for --explain, one
// "file /PATH sha256:HEX" line per regular file.
func setInputs(set layerSet) (string, []string, error) {
	all := sha256.New()
	var files []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	}) {
		e := set[name]
		h := e.hdr
		fmt.Fprintf(all, "%q %c %o %d:%d %d %q %d,%d\n", name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, h.Devmajor, h.Devminor)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		fh := sha256.New()
		switch {
		case e.data != nil:
			fh.Write(e.data)
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return "", nil, fmt.Errorf("hash %s: %w", e.src, err)
			}
			_, err = io.Copy(fh, f)
			f.Close()
			if err != nil {
				return "", nil, fmt.Errorf("hash %s: %w", e.src, err)
			}
		}
		sum := fh.Sum(nil)
		all.Write(sum)
		files = append(files, fmt.Sprintf("file /%s sha256:%x", name, sum))
	}
	return hex.EncodeToString(all.Sum(nil)), files, nil
}
