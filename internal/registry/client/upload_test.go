package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

// startAuthRegistry runs docker-registry with htpasswd basic auth for
// user u, password p.
func startAuthRegistry(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("p"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("u:"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return startRegistryWith(t, "auth:\n  htpasswd:\n    realm: test\n    path: "+file+"\n")
}

// TestUploadBlob pushes a blob in chunks, finds it there the second time,
// mounts it into another repository, and reads it back.
func TestUploadBlob(t *testing.T) {
	host := startAuthRegistry(t)
	ctx := context.Background()
	c := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "p"} }})
	data := make([]byte, 300<<10+17)
	rand.Read(data)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	a, _ := reference.ParseNormalizedNamed(host + "/up/a")
	b, _ := reference.ParseNormalizedNamed(host + "/up/b")

	var last int64
	res, err := c.UploadBlob(ctx, a, desc, bytes.NewReader(data), UploadOptions{ChunkSize: 100 << 10, Progress: func(n int64) { last = n }})
	if err != nil || res != BlobUploaded {
		t.Fatalf("chunked upload: %v %v", res, err)
	}
	if last != desc.Size {
		t.Errorf("progress ended at %d of %d", last, desc.Size)
	}
	if res, err := c.UploadBlob(ctx, a, desc, bytes.NewReader(data), UploadOptions{}); err != nil || res != BlobExists {
		t.Errorf("second upload: %v %v, want BlobExists", res, err)
	}
	var from reference.Named
	res, err = c.UploadBlob(ctx, b, desc, bytes.NewReader(data), UploadOptions{MountFrom: []reference.Named{a}, MountedFrom: func(r reference.Named) { from = r }})
	if err != nil || res != BlobMounted || from == nil || reference.Path(from) != "up/a" {
		t.Errorf("mount: %v %v from %v", res, err, from)
	}
	rc, err := c.FetchBlob(ctx, b, desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	got.ReadFrom(rc)
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("blob read back differs (%d bytes)", got.Len())
	}

	// Monolithic upload into a third repository.
	small := []byte("small blob")
	sd := ocispec.Descriptor{Digest: digest.FromBytes(small), Size: int64(len(small))}
	if res, err := c.UploadBlob(ctx, b, sd, bytes.NewReader(small), UploadOptions{}); err != nil || res != BlobUploaded {
		t.Errorf("monolithic: %v %v", res, err)
	}
}

// TestLogin checks credentials against an htpasswd registry.
func TestLogin(t *testing.T) {
	host := startAuthRegistry(t)
	ctx := context.Background()
	ok := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "p"} }})
	if _, err := ok.Login(ctx, host); err != nil {
		t.Errorf("good login: %v", err)
	}
	bad := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "wrong"} }, MaxAttempts: 1})
	_, err := bad.Login(ctx, host)
	want := "login attempt to http://" + host + "/v2/ failed with status: 401 Unauthorized"
	if err == nil || err.Error() != want || errdefs.ClassOf(err) != errdefs.ClassUnauthorized {
		t.Errorf("bad login: %v, want %q", err, want)
	}
}
