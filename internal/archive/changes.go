package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Changes lists what an overlay upper dir changes relative to its lower
// dirs (given top first), the way `docker diff` shows it: a whiteout is a
// deletion, an entry that exists below is a modification, anything else an
// addition. Paths are absolute inside the container, sorted.
func Changes(upper string, lowers []string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	err := filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("stat %s: %w", p, err)
		}
		c := container.FilesystemChange{Path: "/" + rel, Kind: container.ChangeAdd}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			c.Kind = container.ChangeDelete
		} else if inLowers(lowers, rel) {
			c.Kind = container.ChangeModify
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", upper, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// inLowers reports whether rel exists in the merged view of lowers.
func inLowers(lowers []string, rel string) bool {
	for _, l := range lowers {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(l, rel), &st); err == nil {
			return !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0)
		}
	}
	return false
}
