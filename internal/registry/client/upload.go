package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultChunkSize is the size above which UploadBlob sends a blob in
// PATCH chunks of this size instead of one monolithic PUT.
const DefaultChunkSize = 32 << 20

// BlobPush is what UploadBlob did with a blob.
type BlobPush int

const (
	// BlobExists means the registry had the blob already.
	BlobExists BlobPush = iota
	// BlobMounted means the blob was mounted from another repository.
	BlobMounted
	// BlobUploaded means the bytes were sent.
	BlobUploaded
)

// UploadOptions tune UploadBlob.
type UploadOptions struct {
	// MountFrom are repositories of the same registry that may hold the
	// blob; each is tried as a cross-repository mount before uploading.
	MountFrom []reference.Named
	// ChunkSize: blobs larger than this go in chunks (DefaultChunkSize
	// when zero; negative means always monolithic).
	ChunkSize int64
	// Progress, when set, is called with the bytes sent so far.
	Progress func(sent int64)
	// MountedFrom, when set, is told which repository a mount came from.
	MountedFrom func(repo reference.Named)
}

// HasBlob asks the registry (HEAD) whether named's repository has the blob.
func (c *Client) HasBlob(ctx context.Context, named reference.Named, d digest.Digest) (bool, error) {
	resp, err := c.do(ctx, c.newRequest(named, http.MethodHead, "/blobs/"+d.String(), "pull,push"))
	if err != nil {
		return false, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("check blob %s in %s: %w", d, reference.FamiliarName(named), responseError(resp))
}

// UploadBlob pushes the blob desc, read from r (desc.Size bytes at offset
// 0), to named's repository: nothing when the registry has it, a
// cross-repository mount when one of opts.MountFrom has it, else an upload
// streamed from r — monolithic for small blobs, chunked for big ones. r is
// read again from the start when a request must be retried.
func (c *Client) UploadBlob(ctx context.Context, named reference.Named, desc ocispec.Descriptor, r io.ReaderAt, opts UploadOptions) (BlobPush, error) {
	if ok, err := c.HasBlob(ctx, named, desc.Digest); err != nil {
		return 0, err
	} else if ok {
		return BlobExists, nil
	}
	var loc *url.URL
	for _, from := range opts.MountFrom {
		if reference.Domain(from) != reference.Domain(named) || reference.Path(from) == reference.Path(named) {
			continue
		}
		mounted, l, err := c.mount(ctx, named, from, desc.Digest)
		if err != nil {
			continue // a failed mount only costs an upload
		}
		if mounted {
			if opts.MountedFrom != nil {
				opts.MountedFrom(from)
			}
			return BlobMounted, nil
		}
		loc = l
		break
	}
	if loc == nil {
		var err error
		if loc, err = c.startUpload(ctx, named, desc.Digest); err != nil {
			return 0, err
		}
	}
	chunk := opts.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	var sent atomic.Int64
	report := func(n int64) {
		if opts.Progress != nil {
			opts.Progress(min(sent.Add(n), desc.Size))
		}
	}
	if chunk > 0 && desc.Size > chunk {
		for off := int64(0); off < desc.Size; off += chunk {
			n := min(chunk, desc.Size-off)
			next, err := c.patchChunk(ctx, named, loc, r, off, n, report)
			if err != nil {
				return 0, fmt.Errorf("push blob %s to %s: %w", desc.Digest, reference.FamiliarName(named), err)
			}
			loc = next
		}
		return BlobUploaded, c.finishUpload(ctx, named, loc, desc.Digest, nil, 0, report)
	}
	return BlobUploaded, c.finishUpload(ctx, named, loc, desc.Digest, r, desc.Size, report)
}

// mount asks for a cross-repository mount; a 202 instead of a 201 means
// the registry started an ordinary upload at the returned location.
func (c *Client) mount(ctx context.Context, named, from reference.Named, d digest.Digest) (bool, *url.URL, error) {
	req := c.newRequest(named, http.MethodPost, "/blobs/uploads/", "pull,push")
	req.query = url.Values{"mount": {d.String()}, "from": {reference.Path(from)}}
	req.scope += " " + repoScope(from, "pull")
	resp, err := c.do(ctx, req)
	if err != nil {
		return false, nil, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp)
		return true, nil, nil
	case http.StatusAccepted:
		drain(resp)
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		return false, loc, err
	}
	return false, nil, responseError(resp)
}

func (c *Client) startUpload(ctx context.Context, named reference.Named, d digest.Digest) (*url.URL, error) {
	resp, err := c.do(ctx, c.newRequest(named, http.MethodPost, "/blobs/uploads/", "pull,push"))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("push blob %s to %s: start upload: %w", d, reference.FamiliarName(named), responseError(resp))
	}
	drain(resp)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, fmt.Errorf("push blob %s: bad upload location %q: %v", d, resp.Header.Get("Location"), err)
	}
	return loc, nil
}

// section streams n bytes of r from off, counting them for progress.
func section(r io.ReaderAt, off, n int64, report func(int64)) func() (io.Reader, error) {
	return func() (io.Reader, error) {
		return &countingReader{r: io.NewSectionReader(r, off, n), report: report}, nil
	}
}

type countingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}

// patchChunk sends bytes [off, off+n) of the upload and returns where the
// upload continues.
func (c *Client) patchChunk(ctx context.Context, named reference.Named, loc *url.URL, r io.ReaderAt, off, n int64, report func(int64)) (*url.URL, error) {
	req := c.newRequest(named, http.MethodPatch, "", "pull,push")
	req.path = loc.String()
	req.header.Set("Content-Type", "application/octet-stream")
	req.header.Set("Content-Range", strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
	req.open, req.size = section(r, off, n, report), n
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("upload chunk at %d: %w", off, responseError(resp))
	}
	drain(resp)
	next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, fmt.Errorf("upload chunk at %d: bad location %q", off, resp.Header.Get("Location"))
	}
	return next, nil
}

// finishUpload closes the upload with PUT ?digest=, sending the last n
// bytes of r (all of a monolithic upload) or nothing.
func (c *Client) finishUpload(ctx context.Context, named reference.Named, loc *url.URL, d digest.Digest, r io.ReaderAt, n int64, report func(int64)) error {
	req := c.newRequest(named, http.MethodPut, "", "pull,push")
	req.path = loc.String()
	req.query = url.Values{"digest": {d.String()}}
	req.header.Set("Content-Type", "application/octet-stream")
	if r != nil {
		req.open, req.size = section(r, 0, n, report), n
	} else {
		req.body = []byte{}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push blob %s to %s: %w", d, reference.FamiliarName(named), responseError(resp))
	}
	drain(resp)
	return nil
}

// Login checks credentials against a registry the way `docker login`
// does: GET /v2/, answering the registry's basic or bearer challenge
// with c's credentials for server. server is a host[:port], optionally
// with a scheme or path (https://index.docker.io/v1/). For a registry
// with a token service it also asks for a refresh token and returns it as
// the identity token a client stores instead of the password (empty when
// the service gives none).
func (c *Client) Login(ctx context.Context, server string) (identityToken string, err error) {
	host := server
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		host = u.Host
	}
	host = strings.TrimSuffix(host, "/")
	domain := host
	if host == "" || host == hubDomain || host == "index.docker.io" {
		domain, host = hubDomain, hubEndpoint
	}
	req := &request{method: http.MethodGet, host: host, domain: domain, path: "/v2/", header: http.Header{}, offline: true}
	u, _ := c.url(req)
	resp, err := c.do(ctx, req)
	if err != nil {
		if errdefs.ClassOf(err) == errdefs.ClassUnauthorized {
			return "", errdefs.Unauthorized(fmt.Errorf("login attempt to %s failed with status: 401 Unauthorized", u))
		}
		return "", err
	}
	drain(resp)
	if resp.StatusCode == http.StatusOK {
		c.mu.Lock()
		ch := c.auth[host]
		var refreshed string
		if ch != nil {
			refreshed = c.refresh[ch.params["realm"]+" "+ch.params["service"]]
		}
		c.mu.Unlock()
		if ch == nil || ch.scheme != "bearer" {
			return "", nil
		}
		if refreshed != "" {
			return refreshed, nil
		}
		// Logged in with an identity token the service did not rotate.
		return c.credentials(domain).IdentityToken, nil
	}
	err = fmt.Errorf("login attempt to %s failed with status: %d %s", u, resp.StatusCode, http.StatusText(resp.StatusCode))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Unauthorized(err)
	}
	return "", err
}
