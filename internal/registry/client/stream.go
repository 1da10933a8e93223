package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// StreamOptions tune UploadStream.
type StreamOptions struct {
	UploadOptions
	// Known is the digest the stream had at an earlier push, if any: when
	// the registry has that blob (or can mount it) nothing is sent.
	Known ocispec.Descriptor
}

// UploadStream pushes a blob whose digest is only known once it is
// produced, as a layer compressed on the way out: open's bytes go in one
// streamed PATCH (chunked transfer encoding) while they are hashed, and
// the PUT that closes the upload names the digest they had. open is called
// once; a stream cannot be sent again, so a broken connection fails the
// push rather than being retried here. It returns what was done and the
// blob's descriptor (digest and size; no media type).
func (c *Client) UploadStream(ctx context.Context, named reference.Named, open func() (io.Reader, error), opts StreamOptions) (BlobPush, ocispec.Descriptor, error) {
	var loc *url.URL
	if opts.Known.Digest != "" {
		if ok, err := c.HasBlob(ctx, named, opts.Known.Digest); err != nil {
			return 0, ocispec.Descriptor{}, err
		} else if ok {
			return BlobExists, opts.Known, nil
		}
		for _, from := range opts.MountFrom {
			if reference.Domain(from) != reference.Domain(named) || reference.Path(from) == reference.Path(named) {
				continue
			}
			mounted, l, err := c.mount(ctx, named, from, opts.Known.Digest)
			if err != nil {
				continue
			}
			if mounted {
				if opts.MountedFrom != nil {
					opts.MountedFrom(from)
				}
				return BlobMounted, opts.Known, nil
			}
			loc = l // the registry started an upload instead: use it
			break
		}
	}
	if loc == nil {
		var err error
		if loc, err = c.startUpload(ctx, named, "(streamed)"); err != nil {
			return 0, ocispec.Descriptor{}, err
		}
	}
	h := &hashCounter{h: sha256.New()}
	opened := false
	req := c.newRequest(named, http.MethodPatch, "", "pull,push")
	req.path = loc.String()
	req.header.Set("Content-Type", "application/octet-stream")
	req.size = -1 // unknown: chunked transfer encoding
	req.once = true
	req.open = func() (io.Reader, error) {
		if opened {
			return nil, errors.New("the streamed upload broke and cannot be sent again")
		}
		opened = true
		r, err := open()
		if err != nil {
			return nil, err
		}
		var body io.Reader = io.TeeReader(r, h)
		if opts.Progress != nil {
			body = &countingReader{r: body, report: func(int64) { opts.Progress(h.n) }}
		}
		return body, nil
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return 0, ocispec.Descriptor{}, fmt.Errorf("push stream to %s: %w", reference.FamiliarName(named), err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		return 0, ocispec.Descriptor{}, fmt.Errorf("push stream to %s: %w", reference.FamiliarName(named), responseError(resp))
	}
	drain(resp)
	if l := resp.Header.Get("Location"); l != "" {
		if loc, err = resp.Request.URL.Parse(l); err != nil {
			return 0, ocispec.Descriptor{}, fmt.Errorf("push stream to %s: bad location %q", reference.FamiliarName(named), l)
		}
	}
	desc := ocispec.Descriptor{Digest: digest.NewDigest(digest.SHA256, h.h), Size: h.n}
	if err := c.finishUpload(ctx, named, loc, desc.Digest, nil, 0, nil); err != nil {
		return 0, ocispec.Descriptor{}, err
	}
	return BlobUploaded, desc, nil
}

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func (h *hashCounter) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	return h.h.Write(p)
}

// LinkBlob makes blob d available in named's repository without sending
// it: ok when the registry has it already (BlobExists) or mounts it from
// one of from (BlobMounted, mountedFrom says which). An upload the registry
// starts instead of a mount is cancelled.
func (c *Client) LinkBlob(ctx context.Context, named reference.Named, d digest.Digest, from []reference.Named) (res BlobPush, mountedFrom reference.Named, ok bool, err error) {
	if has, err := c.HasBlob(ctx, named, d); err != nil {
		return 0, nil, false, err
	} else if has {
		return BlobExists, nil, true, nil
	}
	for _, f := range from {
		if reference.Domain(f) != reference.Domain(named) || reference.Path(f) == reference.Path(named) {
			continue
		}
		mounted, loc, err := c.mount(ctx, named, f, d)
		if err != nil {
			continue
		}
		if mounted {
			return BlobMounted, f, true, nil
		}
		if loc != nil {
			req := c.newRequest(named, http.MethodDelete, "", "pull,push")
			req.path = loc.String()
			if resp, err := c.do(ctx, req); err == nil {
				drain(resp)
			}
		}
	}
	return 0, nil, false, nil
}
