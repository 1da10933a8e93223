package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/gzip"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	regclient "berth/internal/registry/client"
)

// Layers that berth made itself (build, commit, import) or loaded from
// docker's uncompressed archives are stored as plain tar. Registries and
// the clients pulling from them expect gzip, as docker pushes, so such a
// layer is compressed while it is sent: one pass over the stored blob,
// hashed as it goes, no temporary copy. The compressed digest is then
// remembered (push-compressed in metadata.db), which makes the next push
// of that layer a HEAD (or a mount) instead of a second compression.

// pushGzipLevel trades size for speed: pushes are mostly to registries
// on fast networks, where compressing at the default level would be the
// bottleneck. The output is deterministic for a given level and input.
const pushGzipLevel = gzip.BestSpeed

// errPushAborted ends the compressor when the upload stops reading.
var errPushAborted = errors.New("push aborted")

// uncompressedLayer tells the media types of plain tar layers.
func uncompressedLayer(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageLayer, "application/vnd.docker.image.rootfs.diff.tar":
		return true
	}
	return false
}

// pushCompressed pushes the plain tar layer desc gzip-compressed and
// returns the descriptor of the compressed blob, for the manifest.
func (d *Daemon) pushCompressed(ctx context.Context, c *regclient.Client, named reference.Named, desc ocispec.Descriptor, id string, mountFrom []reference.Named, rep *pullReporter) (ocispec.Descriptor, error) {
	progress := layerProgress(rep, id, desc.Size)
	var pr *io.PipeReader
	open := func() (io.Reader, error) {
		f, err := d.images.OpenBlob(desc.Digest)
		if err != nil {
			return nil, err
		}
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		go func() {
			defer f.Close()
			zw, err := gzip.NewWriterLevel(pw, pushGzipLevel)
			if err == nil {
				_, err = io.Copy(zw, &sourceProgress{r: f, report: progress})
				if cerr := zw.Close(); err == nil {
					err = cerr
				}
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	var from reference.Named
	known := d.compressedFor(desc.Digest)
	res, got, err := c.UploadStream(ctx, named, open, regclient.StreamOptions{
		Known: known,
		UploadOptions: regclient.UploadOptions{
			MountFrom:   mountFrom,
			MountedFrom: func(r reference.Named) { from = r },
		},
	})
	if pr != nil {
		pr.CloseWithError(errPushAborted) // lets the compressor end if the upload did not read it all
	}
	if err != nil {
		return ocispec.Descriptor{}, unclassified{fmt.Errorf("push layer %s compressed: %w", desc.Digest, err)}
	}
	got.MediaType = ocispec.MediaTypeImageLayerGzip
	if res == regclient.BlobUploaded && got.Digest != known.Digest {
		d.recordCompressed(desc.Digest, ocispec.Descriptor{Digest: got.Digest, Size: got.Size})
	}
	reportPushed(rep, id, res, from)
	return got, nil
}

// sourceProgress reports the bytes read from a stored layer.
type sourceProgress struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (s *sourceProgress) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if n > 0 {
		s.report(s.n)
	}
	return n, err
}
