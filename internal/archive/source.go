package archive

import (
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"berth/internal/errdefs"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// sourceReader remembers the first error its stream returned, so that a
// failure inside tar parsing or file writing can be told apart: the input
// broke (its read failed), or the input was fine and berth's own I/O failed.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// readError classifies an error met while reading the layer stream, with
// what says what was being read. What the source itself reported decides:
//   - a classified error (the registry client's Unavailable after its
//     retries, a caller's NotFound...) keeps its class;
//   - a cut stream or corrupt compression is bad input: InvalidParameter;
//   - any other I/O error of the source (a reset connection) is
//     Unavailable, a reason to try again rather than a bad request.
//
// When the source read fine, the tar itself is malformed: InvalidParameter.
func (a *applier) readError(what string, err error) error {
	src := a.src.err
	if src == nil {
		return errdefs.InvalidParameter(fmt.Errorf("%s: %w", what, err))
	}
	werr := fmt.Errorf("%s: %w", what, err)
	if !errors.Is(err, src) {
		// The tar reader returned its own error, caused by src's.
		werr = fmt.Errorf("%s: %w (%w)", what, err, src)
	}
	if errdefs.ClassOf(src) != errdefs.Unknown {
		return werr
	}
	if badStream(src) {
		return errdefs.InvalidParameter(werr)
	}
	return errdefs.Unavailable(werr)
}

// badStream tells errors of malformed or truncated input: the stream's
// content is at fault, not the connection it came on.
func badStream(err error) bool {
	// Decompress uses klauspost's gzip; callers may hand in the standard
	// library's.
	var corrupt flate.CorruptInputError
	var kcorrupt kflate.CorruptInputError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, kgzip.ErrChecksum) || errors.Is(err, kgzip.ErrHeader) ||
		errors.As(err, &corrupt) || errors.As(err, &kcorrupt) {
		return true
	}
	// zstd's errors are plain values in their own package; they all say so.
	return strings.HasPrefix(err.Error(), "zstd: ") || strings.Contains(err.Error(), "invalid input")
}

// readTracker notes whether reads of one file's content failed, so a
// failed copy is blamed on the stream or on the file written.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}
