package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrorLine(t *testing.T) {
	for _, tc := range []struct{ df, want string }{
		{"FROM busybox\nBOGUS x\n", "dockerfile parse error line 2: unknown instruction: BOGUS"},
		{"FROM busybox\nENV\n", "dockerfile parse error line 2: "},
		{"# only a comment\n", "dockerfile parse error"},
	} {
		_, err := Parse(strings.NewReader(tc.df))
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want a ParseError starting %q", tc.df, err, tc.want)
		}
	}
}

// FuzzParse: any input parses or gives a *ParseError, never a panic.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/Dockerfile")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, df string) {
		d, err := Parse(strings.NewReader(df))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if len(d.Stages) == 0 {
			t.Fatal("parsed with no stage")
		}
	})
}
