package image

import (
	"os"

	digest "github.com/opencontainers/go-digest"
)

// OpenBlob opens a stored blob (a config or a layer as stored) for
// reading, as a push streams it. The open file stays readable even if
// the image is deleted meanwhile.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	return s.content.Open(d)
}
