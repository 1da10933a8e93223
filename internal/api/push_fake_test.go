package api

import (
	"context"
	"errors"
	"strings"

	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/internal/errdefs"
)

// ImagePush of the fake answers like a daemon without the image.
func (f *fakeBackend) ImagePush(ctx context.Context, name, tag, authHeader string, out Progress) error {
	return errdefs.NotFound(errors.New("tag does not exist: " + name + ":" + tag))
}

// RegistryLogin of the fake accepts user "u" with password "p".
func (f *fakeBackend) RegistryLogin(ctx context.Context, ac registry.AuthConfig) (registry.AuthResponse, error) {
	if ac.Username == "u" && ac.Password == "p" {
		return registry.AuthResponse{Status: "Login Succeeded"}, nil
	}
	return registry.AuthResponse{}, errors.New("login attempt to http://" + ac.ServerAddress + "/v2/ failed with status: 401 Unauthorized")
}

// DistributionInspect of the fake knows one multi-platform image,
// "reg:5000/multi:v1".
func (f *fakeBackend) DistributionInspect(ctx context.Context, name, authHeader string) (*registry.DistributionInspect, error) {
	if name != "reg:5000/multi:v1" {
		return nil, errdefs.NotFound(errors.New("manifest unknown: " + name))
	}
	return &registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.Digest("sha256:" + strings.Repeat("ab", 32)), Size: 321},
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}},
	}, nil
}
