package api

import (
	"context"
	"errors"
	"io"

	"berth/internal/errdefs"
)

// Build makes the fake a Backend; the builder is tested in internal/build
// and end to end in integration/.
func (f *fakeBackend) Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out Progress) error {
	return errdefs.NotImplemented(errors.New("build is not implemented by the fake backend"))
}
