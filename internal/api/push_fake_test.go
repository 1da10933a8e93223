package api

import (
	"context"
	"errors"

	"github.com/moby/moby/api/types/registry"

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
