package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"berth/internal/errdefs"
)

// failingReader serves data, then fails with err instead of io.EOF.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestApplyErrorClasses: bad input is InvalidParameter (400); a source
// that breaks is Unavailable (503) or keeps the class its reader gave.
func TestApplyErrorClasses(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 8<<10)
	layer := mkTar(t, reg("a", "x"), reg("big", big))
	cut := len(layer) / 2 // inside big's content
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	corrupt := append([]byte(nil), gz.Bytes()...)
	corrupt[len(corrupt)/2] ^= 0xff

	cases := []struct {
		name  string
		src   func() io.Reader
		class errdefs.Class
		is    error
	}{
		{"truncated tar", func() io.Reader { return bytes.NewReader(layer[:cut]) }, errdefs.ClassInvalidParameter, io.ErrUnexpectedEOF},
		{"path escape", func() io.Reader { return bytes.NewReader(mkTar(t, reg("../x", "y"))) }, errdefs.ClassInvalidParameter, nil},
		{"corrupt gzip", func() io.Reader {
			zr, err := gzip.NewReader(bytes.NewReader(corrupt))
			if err != nil {
				t.Fatal(err)
			}
			return zr
		}, errdefs.ClassInvalidParameter, nil},
		{"corrupt gzip (Decompress)", func() io.Reader {
			zr, _, err := Decompress(bytes.NewReader(corrupt))
			if err != nil {
				t.Fatal(err)
			}
			return zr
		}, errdefs.ClassInvalidParameter, nil},
		{"connection reset", func() io.Reader {
			return &failingReader{data: layer[:cut], err: syscall.ECONNRESET}
		}, errdefs.ClassUnavailable, syscall.ECONNRESET},
		{"reset between entries", func() io.Reader {
			return &failingReader{data: layer[:1024], err: syscall.ECONNRESET}
		}, errdefs.ClassUnavailable, syscall.ECONNRESET},
		{"classified source error", func() io.Reader {
			return &failingReader{data: layer[:cut], err: errdefs.NotFound(errors.New("blob gone"))}
		}, errdefs.ClassNotFound, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Apply(context.Background(), t.TempDir(), c.src(), opts())
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if got := errdefs.ClassOf(err); got != c.class {
				t.Errorf("class %v, want %v: %v", got, c.class, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
		})
	}
}
