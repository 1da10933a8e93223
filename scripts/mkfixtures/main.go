// Command mkfixtures writes the test and quickstart images into a directory:
//
//	hello.tar         docker-archive of hello:latest (examples/hello, FROM scratch)
//	busybox.tar       docker-archive of busybox:latest (from /bin/busybox)
//	busybox-oci.tar   the same busybox image as a tarred OCI image layout
//
// Load them with `berth load -i DIR/hello.tar` or `docker load -i ...`.
// Run it from inside the repository: go run ./scripts/mkfixtures -o DIR
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"berth/internal/fixture"
)

func main() {
	out := flag.String("o", "bin/fixtures", "directory to write the archives into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "mkfixtures:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hello := filepath.Join(dir, "hello")
	if err := fixture.BuildHello(hello); err != nil {
		return err
	}
	defer os.Remove(hello)
	archives := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"hello.tar", func(w io.Writer) error { return fixture.HelloImage(w, "hello:latest", hello) }},
		{"busybox.tar", func(w io.Writer) error { return fixture.BusyboxImage(w, "busybox:latest") }},
		{"busybox-oci.tar", func(w io.Writer) error { return fixture.OCILayout(w, "busybox:latest") }},
	}
	for _, a := range archives {
		path := filepath.Join(dir, a.name)
		if err := writeAtomic(path, a.write); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		slog.Info("wrote fixture", "path", path)
	}
	return nil
}

// writeAtomic writes through a temporary file renamed into place, so that a
// reader never sees half an archive.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
