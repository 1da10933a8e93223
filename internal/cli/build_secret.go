package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"berth/internal/build"
)

// parseSecret reads one --secret id=ID,src=FILE (also source=; type=file
// is the only type) and returns the id and the file's contents.
func parseSecret(s string) (string, []byte, error) {
	var id, src string
	for _, field := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "src", "source":
			src = v
		case "type":
			if v != "file" {
				return "", nil, fmt.Errorf("--secret %s: only type=file is supported", s)
			}
		default:
			return "", nil, fmt.Errorf("--secret %s: unknown field %q", s, k)
		}
	}
	if src == "" {
		return "", nil, fmt.Errorf("--secret %s: src=FILE is required", s)
	}
	if id == "" {
		id = path.Base(src)
	}
	if strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
		return "", nil, fmt.Errorf("--secret %s: invalid id %q", s, id)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", nil, fmt.Errorf("--secret %s: %w", s, err)
	}
	return id, data, nil
}

// withControl appends the secrets and the explain flag to the context
// tar under build.ControlDir; the daemon takes them out before the build
// sees the context, so secrets reach only RUN --mount=type=secret.
func withControl(context io.Reader, specs []string, explain bool) (io.Reader, error) {
	if len(specs) == 0 && !explain {
		return context, nil
	}
	secrets := map[string][]byte{}
	for _, s := range specs {
		id, data, err := parseSecret(s)
		if err != nil {
			return nil, err
		}
		secrets[id] = data
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(context)
		tw := tar.NewWriter(pw)
		err := func() error {
			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
			if explain {
				if err := tw.WriteHeader(&tar.Header{Name: build.ControlDir + "/explain", Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
					return err
				}
			}
			for id, data := range secrets {
				hdr := &tar.Header{Name: build.ControlDir + "/secrets/" + id, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := tw.Write(data); err != nil {
					return err
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, nil
}
