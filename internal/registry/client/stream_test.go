package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"berth/internal/registry/server"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// startServer runs berth's own registry in process, on loopback.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := server.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestUploadStream: a blob whose digest is known only once sent goes in
// one streamed PATCH; with the digest remembered, the next push is a HEAD
// or a mount and open is not called; a stream that breaks fails the push
// and leaves no blob.
func TestUploadStream(t *testing.T) {
	host := startServer(t)
	ctx := context.Background()
	c := New(Options{})
	data := make([]byte, 1<<20+5)
	rand.Read(data)
	a, _ := reference.ParseNormalizedNamed(host + "/st/a")
	b, _ := reference.ParseNormalizedNamed(host + "/st/b")
	opens := 0
	open := func() (io.Reader, error) { opens++; return bytes.NewReader(data), nil }

	res, desc, err := c.UploadStream(ctx, a, open, StreamOptions{})
	if err != nil || res != BlobUploaded {
		t.Fatalf("streamed upload: %v %v", res, err)
	}
	if desc.Digest != digest.FromBytes(data) || desc.Size != int64(len(data)) {
		t.Fatalf("streamed upload returned %v, want the data's digest and size", desc)
	}
	rc, err := c.FetchBlob(ctx, a, desc)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("blob read back differs (%d bytes)", len(got))
	}

	if res, _, err := c.UploadStream(ctx, a, open, StreamOptions{Known: desc}); err != nil || res != BlobExists {
		t.Errorf("second push with the known digest: %v %v, want BlobExists", res, err)
	}
	var from reference.Named
	res, _, err = c.UploadStream(ctx, b, open, StreamOptions{Known: desc,
		UploadOptions: UploadOptions{MountFrom: []reference.Named{a}, MountedFrom: func(r reference.Named) { from = r }}})
	if err != nil || res != BlobMounted || from == nil {
		t.Errorf("push into another repository with the known digest: %v %v from %v, want a mount", res, err, from)
	}
	if opens != 1 {
		t.Errorf("the stream was opened %d times, want once", opens)
	}

	// A stream that breaks half way.
	broken := func() (io.Reader, error) {
		return io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{errors.New("disk on fire")}), nil
	}
	other, _ := reference.ParseNormalizedNamed(host + "/st/broken")
	if _, _, err := c.UploadStream(ctx, other, broken, StreamOptions{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("broken stream: %v, want its error", err)
	}
	half := ocispec.Descriptor{Digest: digest.FromBytes(data[:len(data)/2])}
	if ok, err := c.HasBlob(ctx, other, half.Digest); err != nil || ok {
		t.Errorf("the broken stream left a blob: %v %v", ok, err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
