package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	"github.com/moby/moby/client"
)

// TestSDKUploadsReuseConnections: back-to-back builds through one Go SDK
// client (keep-alive connections, bodies streamed through a pipe as
// moby's fakecontext does). A build response that completed before the
// server had read the upload to its end left a connection the client
// reused and the server dropped: about one build in 30 failed with
// "write: broken pipe" (moby's TestExecUser, TestCopyFromContainer).
func TestSDKUploadsReuseConnections(t *testing.T) {
	e := daemonEnv(t)
	c := sdkClient(t, e)
	ctx := sdkContext(t)
	mk := func(df string) io.Reader {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
			tw.Write([]byte(df))
			pw.CloseWithError(tw.Close())
		}()
		return pr
	}
	for i := 0; i < 30; i++ {
		for _, df := range []string{"FROM busybox\nRUN rm /etc/group\n", "FROM busybox\nRUN rm /etc/passwd\n"} {
			resp, err := c.ImageBuild(ctx, mk(df), client.ImageBuildOptions{})
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			var b bytes.Buffer
			io.Copy(&b, resp.Body)
			resp.Body.Close()
			if !bytes.Contains(b.Bytes(), []byte(`"aux":{"ID":"sha256:`)) {
				t.Fatalf("round %d: build stream without an image ID:\n%s", i, b.String())
			}
		}
	}
}
