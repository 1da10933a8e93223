package api

import (
	"context"
	"errors"
	"fmt"
	"io"

	buildtypes "github.com/moby/moby/api/types/build"

	"berth/internal/errdefs"
)

// Build makes the fake a Backend; the builder is tested in internal/build
// and end to end in integration/.
func (f *fakeBackend) Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out Progress) error {
	return errdefs.NotImplemented(errors.New("build is not implemented by the fake backend"))
}

// BuildCachePrune echoes the options it got in CachesDeleted, so a test
// sees how the query was read.
func (f *fakeBackend) BuildCachePrune(ctx context.Context, opts BuildPruneOptions) (*buildtypes.CachePruneReport, error) {
	got := fmt.Sprintf("all=%t until=%s keep=%d", opts.All, opts.Until, opts.KeepStorage)
	return &buildtypes.CachePruneReport{CachesDeleted: []string{got}, SpaceReclaimed: 42}, nil
}
