package jsonlog

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, paths []string) []Entry {
	t.Helper()
	var out []Entry
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(f)
		for {
			e, _, err := d.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		f.Close()
	}
	return out
}

func TestWriteSplitsLinesAndKeepsStreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(p, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 123, time.UTC)
	w.Write("stdout", []byte("one\ntwo\npartial"), now)
	w.Write("stderr", []byte("err \"quoted\" <tag>\n"), now)
	w.Close()
	got := readAll(t, []string{p})
	want := []Entry{{"one\n", "stdout", now}, {"two\n", "stdout", now}, {"partial", "stdout", now}, {"err \"quoted\" <tag>\n", "stderr", now}}
	if len(got) != len(want) {
		t.Fatalf("got %d entries: %+v", len(got), got)
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream || !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	b, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(b), `{"log":"one\n","stream":"stdout","time":"2026-12-04T10:00:00.000000123Z"}`) {
		t.Fatalf("not docker's json-file format: %s", b)
	}
}

func TestLongLinesSplitAt16KiB(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := NewWriter(p, 0, 1)
	w.Write("stdout", []byte(strings.Repeat("x", 40<<10)+"\n"), time.Now())
	w.Close()
	got := readAll(t, []string{p})
	if len(got) != 3 || len(got[0].Log) != 16<<10 || got[2].Log[len(got[2].Log)-1] != '\n' {
		t.Fatalf("want 3 pieces of <=16KiB, got %d", len(got))
	}
}

func TestRotationKeepsNewestFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	w, _ := NewWriter(p, 200, 3)
	for i := 0; i < 40; i++ {
		w.Write("stdout", []byte(strings.Repeat("a", 20)+"\n"), time.Now())
	}
	w.Write("stdout", []byte("last\n"), time.Now())
	w.Close()
	files := Files(p, 3)
	if len(files) != 3 {
		t.Fatalf("want 3 files (log, .1, .2), got %v", files)
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Fatal("a 4th file exists beyond max-file 3")
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 200 {
			t.Fatalf("%s is %d bytes, over max-size", f, st.Size())
		}
	}
	got := readAll(t, files)
	if got[len(got)-1].Log != "last\n" {
		t.Fatalf("newest entry not last: %q", got[len(got)-1].Log)
	}
}
