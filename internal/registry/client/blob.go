package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FetchBlob streams the blob desc of named's repository. When the
// connection breaks, the download resumes where it stopped with a Range
// request (or, if the registry ignores ranges, by skipping what was read),
// up to MaxAttempts times. The bytes are not verified here: the caller
// hashes them as it consumes them (the image store does).
func (c *Client) FetchBlob(ctx context.Context, named reference.Named, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return tryHosts(ctx, c, named, "blob", func(host string) (io.ReadCloser, error) {
		b := &blobReader{c: c, ctx: ctx, host: host, named: named, desc: desc}
		if err := b.open(); err != nil {
			return nil, err
		}
		return b, nil
	})
}

type blobReader struct {
	c       *Client
	ctx     context.Context
	host    string // the endpoint serving the download: a mirror or the registry
	named   reference.Named
	desc    ocispec.Descriptor
	body    io.ReadCloser
	off     int64
	resumes int
}

// open starts (or restarts at b.off) the download.
func (b *blobReader) open() error {
	r := b.c.newRequestAt(b.host, b.named, http.MethodGet, "/blobs/"+b.desc.Digest.String(), "pull")
	if b.off > 0 {
		r.header.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
	}
	resp, err := b.c.do(b.ctx, r)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && b.off > 0:
	case resp.StatusCode == http.StatusOK:
		if b.off > 0 {
			// No range support: skip what we have.
			if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
				resp.Body.Close()
				return errdefs.Unavailable(fmt.Errorf("resume blob %s: %w", b.desc.Digest, err))
			}
		}
	default:
		err := responseError(resp)
		if errdefs.IsNotFound(err) {
			return errdefs.NotFound(fmt.Errorf("blob %s of %s not found: %w", b.desc.Digest, reference.FamiliarName(b.named), err))
		}
		return fmt.Errorf("fetch blob %s of %s: %w", b.desc.Digest, reference.FamiliarName(b.named), err)
	}
	b.body = resp.Body
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.body == nil {
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil || (err == io.EOF && (b.desc.Size <= 0 || b.off >= b.desc.Size)) {
			return n, err
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		// A broken connection: resume unless the caller gave up.
		b.body.Close()
		b.body = nil
		if b.ctx.Err() != nil || b.resumes+1 >= b.c.opts.MaxAttempts {
			if errors.Is(err, context.Canceled) || b.ctx.Err() != nil {
				return n, b.ctx.Err()
			}
			return n, errdefs.Unavailable(fmt.Errorf("download blob %s at byte %d: %w", b.desc.Digest, b.off, err))
		}
		b.resumes++
		slog.Debug("registry: resuming blob download", "digest", b.desc.Digest, "offset", b.off, "err", err)
		if err := sleep(b.ctx, b.c.opts.Backoff); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		err := b.body.Close()
		b.body = nil
		return err
	}
	return nil
}
