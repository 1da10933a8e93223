package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushBlob uploads data as the blob desc to named's repository, unless the
// registry has it already: one POST to start an upload, one monolithic PUT
// to finish it. Data is held in memory, which suits configs and test
// layers; a streamed, chunked push is still to come.
func (c *Client) PushBlob(ctx context.Context, named reference.Named, desc ocispec.Descriptor, data []byte) error {
	if got := digest.FromBytes(data); got != desc.Digest {
		return fmt.Errorf("push blob %s: the data's digest is %s", desc.Digest, got)
	}
	head := c.newRequest(named, http.MethodHead, "/blobs/"+desc.Digest.String(), "pull,push")
	resp, err := c.do(ctx, head)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	start := c.newRequest(named, http.MethodPost, "/blobs/uploads/", "pull,push")
	if resp, err = c.do(ctx, start); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("push blob %s to %s: start upload: %w", desc.Digest, reference.FamiliarName(named), responseError(resp))
	}
	drain(resp)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("push blob %s: bad upload location %q: %w", desc.Digest, resp.Header.Get("Location"), err)
	}
	put := c.newRequest(named, http.MethodPut, "", "pull,push")
	put.path = loc.String()
	put.query = url.Values{"digest": {desc.Digest.String()}}
	put.header.Set("Content-Type", "application/octet-stream")
	put.body = data
	if resp, err = c.do(ctx, put); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push blob %s to %s: %w", desc.Digest, reference.FamiliarName(named), responseError(resp))
	}
	drain(resp)
	return nil
}

// PushManifest uploads a manifest or index under named's tag (or digest)
// and returns its digest.
func (c *Client) PushManifest(ctx context.Context, named reference.Named, mediaType string, raw []byte) (digest.Digest, error) {
	r := c.newRequest(named, http.MethodPut, "/manifests/"+manifestRef(named), "pull,push")
	r.header.Set("Content-Type", mediaType)
	r.body = raw
	resp, err := c.do(ctx, r)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("push manifest %s: %w", reference.FamiliarString(named), responseError(resp))
	}
	drain(resp)
	return digest.FromBytes(raw), nil
}
