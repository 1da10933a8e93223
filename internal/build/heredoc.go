package build

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/mount"
)

// Heredocs follow BuildKit's dockerfile frontend:
//
//   - RUN <<EOF with nothing else on the line runs the document as the
//     shell's script (sh -c DOC); a document starting with "#!" is
//     instead written to a file and executed, so its interpreter runs it;
//   - any other RUN line (RUN <<EOF bash, RUN cat <<A <<B, RUN python3
//     <<"EOF") is given back to the shell whole, documents included, and
//     the shell does the redirections (a quoted delimiter disables its
//     expansion there, as in sh);
//   - COPY/ADD <<EOF DEST create DEST from the document (mode 0644 unless
//     --chmod); an unquoted delimiter expands build variables in it.
//
// `<<-` strips leading tabs in every case.

// heredocPipeDir is where a shebang heredoc is mounted, as in BuildKit.
const heredocPipeDir = "/dev/pipes"

// heredocRun rewrites the command line of a RUN with heredocs. It returns
// the command (before the shell is prepended), a mount for a shebang
// script, the text that enters the cache key, and a clean-up.
func heredocRun(c *instructions.RunCommand) (args []string, ms []mount.Mount, keyText string, cleanup func(), err error) {
	cleanup = func() {}
	args = c.CmdLine
	if len(c.Files) == 0 {
		return args, nil, "", cleanup, nil
	}
	if len(args) != 1 || !c.PrependShell {
		return nil, nil, "", cleanup, fmt.Errorf("RUN with a heredoc: the command must be in shell form, got %q", args)
	}
	var key strings.Builder
	for _, f := range c.Files {
		fmt.Fprintf(&key, "heredoc %s chomp=%t %q\n", f.Name, f.Chomp, f.Data)
	}
	if h := parser.MustParseHeredoc(args[0]); h != nil {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if !strings.HasPrefix(data, "#!") {
			return []string{data}, nil, key.String(), cleanup, nil
		}
		dir, err := os.MkdirTemp("", "berth-heredoc-")
		if err != nil {
			return nil, nil, "", cleanup, fmt.Errorf("RUN heredoc %s: %w", h.Name, err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		name := path.Base("/" + c.Files[0].Name)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			cleanup()
			return nil, nil, "", func() {}, fmt.Errorf("RUN heredoc %s: %w", h.Name, err)
		}
		// The container user may not be root: the script must be readable.
		os.Chmod(dir, 0o755)
		ms = []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: heredocPipeDir, ReadOnly: true}}
		return []string{path.Join(heredocPipeDir, name)}, ms, key.String(), cleanup, nil
	}
	full := args[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return []string{full}, nil, key.String(), cleanup, nil
}

// heredocExec reports whether the rewritten command is a shebang script
// to execute directly rather than through the shell.
func heredocExec(args []string) bool {
	return len(args) == 1 && strings.HasPrefix(args[0], heredocPipeDir+"/")
}

// expandRaw expands build variables inside COPY/ADD heredocs whose
// delimiter is unquoted; quotes are kept as written (BuildKit's rule).
func (b *builder) expandRaw(st *stageState, cmd instructions.Command) error {
	ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw)
	if !ok {
		return nil
	}
	lex := shell.NewLex(b.escape)
	lex.SkipProcessQuotes = true
	env := shell.EnvsFromSlice(st.env())
	return ex.ExpandRaw(func(word string) (string, error) {
		v, _, err := lex.ProcessWord(word, env)
		return v, err
	})
}

// addInline adds COPY/ADD heredoc documents to the layer: each becomes a
// regular file named after its delimiter in a directory destination, or
// the destination itself.
func (b *builder) addInline(set layerSet, docs []instructions.SourceContent, dest string, destDir bool, owner *[2]int, mode *fs.FileMode) {
	for _, d := range docs {
		target := dest
		if destDir {
			target = path.Join(dest, path.Base("/"+d.Path))
		}
		name := strings.TrimPrefix(path.Clean(target), "/")
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(d.Data)),
			ModTime: b.clamp(time.Unix(0, 0))}
		if owner != nil {
			hdr.Uid, hdr.Gid = owner[0], owner[1]
		}
		if mode != nil {
			hdr.Mode = int64(*mode)
		}
		set[name] = &entry{hdr: hdr, data: []byte(d.Data)}
	}
}
