package keeper

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestOutputReaderPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	want := bytes.Repeat([]byte("abc"), 20000) // more than one buffer
	go func() {
		w.Write(want)
		w.Close()
	}()
	var got []byte
	or := outputReader{f: r}
	for {
		buf, n, err := or.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if n > pumpBufSize {
			t.Fatalf("read %d bytes, more than a buffer", n)
		}
		got = append(got, (*buf)[:n]...)
		release(buf)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
}

func TestReadOOMKills(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		text string
		want uint64
		ok   bool
	}{
		"v1":      {"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3, true},
		"v2":      {"low 0\nhigh 0\nmax 2\noom 2\noom_kill 1\noom_group_kill 0\n", 1, true},
		"missing": {"oom_kill_disable 0\nunder_oom 0\n", 0, false},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := readOOMKills(p)
		if (err == nil) != tc.ok || n != tc.want {
			t.Errorf("%s: readOOMKills = %d, %v; want %d (ok %v)", name, n, err, tc.want, tc.ok)
		}
	}
}
