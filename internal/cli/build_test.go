package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth/internal/build"
)

// TestBuildWhy runs `build --why` on a context: it prints the deciding
// .dockerignore line for each path and builds nothing (no daemon here).
func TestBuildWhy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# logs\n*.log\n!important.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	c := NewCli(WithStreams(strings.NewReader(""), &out, &errOut))
	c.host = "unix:///nonexistent/berth-test.sock" // a build would fail to connect
	cmd := newBuildCommand(c)
	cmd.SetArgs([]string{"--why", "debug.log", "--why", "important.log", "--why", "main.go", dir})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("build --why: %v\n%s", err, errOut.String())
	}
	want := "debug.log: excluded by .dockerignore line 2: *.log\n" +
		"important.log: included by .dockerignore line 3: !important.log\n  (overrides line 2: *.log)\n" +
		"main.go: included: no .dockerignore rule matches it\n"
	if out.String() != want {
		t.Fatalf("build --why printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestControlHeaders: --secret and --explain become request headers the
// daemon decodes back; bad specs fail before anything is sent.
func TestControlHeaders(t *testing.T) {
	if h, err := controlHeaders(nil, false); err != nil || h != nil {
		t.Fatalf("no secrets, no explain: %v %v", h, err)
	}
	src := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(src, []byte("v4lue"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := controlHeaders([]string{"id=tok,src=" + src}, true)
	if err != nil {
		t.Fatal(err)
	}
	if h[build.ExplainHeader] != "1" {
		t.Errorf("explain header %q", h[build.ExplainHeader])
	}
	secrets, err := build.DecodeSecrets(h[build.SecretsHeader])
	if err != nil || string(secrets["tok"]) != "v4lue" || len(secrets) != 1 {
		t.Fatalf("secrets header decodes to %q, %v", secrets, err)
	}
	if strings.Contains(h[build.SecretsHeader], "v4lue") {
		t.Error("the secret is readable in the header as is")
	}
	if _, err := controlHeaders([]string{"id=../x,src=" + src}, false); err == nil {
		t.Error("an id with a slash was accepted")
	}
}

// TestControlHeadersTooLarge: secrets too big for a request header are
// refused by the CLI with a clear message, not by the server with a 431.
func TestControlHeadersTooLarge(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, bytes.Repeat([]byte("x"), 700<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := controlHeaders([]string{"id=big,src=" + src}, false); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("a 700 KiB secret: %v", err)
	}
}
