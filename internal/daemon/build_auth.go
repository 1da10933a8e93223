package daemon

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"

	"berth/internal/errdefs"
)

// buildAuth is the X-Registry-Config of a POST /build: every credential
// the client holds, keyed by registry as config.json keys them, for the
// pulls of FROM and COPY --from images.
type buildAuth map[string]registry.AuthConfig

// decodeBuildAuth reads the header (base64url JSON; docker sends "e30="
// for none). Like X-Registry-Auth, padded standard base64 is accepted.
func decodeBuildAuth(header string) (buildAuth, error) {
	if header == "" {
		return nil, nil
	}
	raw, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(header); err != nil {
			if raw, err = base64.RawURLEncoding.DecodeString(header); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Config header: %w", err))
			}
		}
	}
	var m buildAuth
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Config header: %w", err))
	}
	return m, nil
}

// registryHost is the host[:port] a config.json key or a reference
// domain names: keys may carry a scheme and a path
// ("https://index.docker.io/v1/"), and Docker Hub has several names.
func registryHost(key string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// header returns the X-Registry-Auth value for pulling ref: the
// credentials of ref's registry, or "" (anonymous) when there are none.
// An exact key wins over one that only matches after normalising, as in
// docker's ResolveAuthConfig.
func (a buildAuth) header(ref string) string {
	if len(a) == 0 {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	host := reference.Domain(named)
	ac, ok := a[host]
	if !ok {
		for key, c := range a {
			if registryHost(key) == host {
				ac, ok = c, true
				break
			}
		}
	}
	// docker's CLI lists a credHelpers registry even when its helper has
	// nothing for it: an empty entry is anonymous.
	if !ok || ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return ""
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return ""
	}
	return base64.URLEncoding.EncodeToString(b)
}

// denied rewords a pull the registry refused (401/403) so that the build
// says what to do: docker's "pull access denied" and a login hint when
// the client sent no credentials for the registry, else that the ones it
// sent were refused. Other errors give nil.
func (a buildAuth) denied(ref string, err error) error {
	cause := err
	var u unclassified // pull's 500s keep the registry client's class inside
	if errors.As(err, &u) {
		cause = u.err
	}
	switch errdefs.ClassOf(cause) {
	case errdefs.ClassUnauthorized, errdefs.ClassForbidden:
	default:
		return nil
	}
	host := ref
	if named, perr := reference.ParseNormalizedNamed(ref); perr == nil {
		host = reference.Domain(named)
	}
	if a.header(ref) == "" {
		return errdefs.Forbidden(fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login' to %s (no credentials were sent for it): %w", ref, host, err))
	}
	return errdefs.Forbidden(fmt.Errorf("pull access denied for %s: the credentials sent for %s were refused: %w", ref, host, err))
}
