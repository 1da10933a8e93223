package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"berth/internal/errdefs"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a stream, told by its first bytes.
type Compression int

// The compressions berth reads.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

var (
	gzipMagic  = []byte{0x1f, 0x8b, 0x08}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte{0x42, 0x5a, 0x68}
	xzMagic    = []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}
)

// Detect tells the compression of the stream whose first bytes are head.
func Detect(head []byte) (Compression, error) {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.HasPrefix(head, bzip2Magic):
		return Uncompressed, errdefs.InvalidParameter(fmt.Errorf("bzip2 compression is not supported"))
	case bytes.HasPrefix(head, xzMagic):
		return Uncompressed, errdefs.InvalidParameter(fmt.Errorf("xz compression is not supported"))
	}
	return Uncompressed, nil
}

// Decompress returns a reader of r's uncompressed bytes, detecting gzip and
// zstd by their magic numbers. Close releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(10)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("read stream header: %w", err)
	}
	c, err := Detect(head)
	if err != nil {
		return nil, c, err
	}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, errdefs.InvalidParameter(fmt.Errorf("gzip stream: %w", err))
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, c, errdefs.InvalidParameter(fmt.Errorf("zstd stream: %w", err))
		}
		return zstdCloser{zr}, c, nil
	}
	return io.NopCloser(br), c, nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }
