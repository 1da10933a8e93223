package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"berth/internal/errdefs"
)

// validObjectName is dockerd's rule for names of containers and checkpoints.
var validObjectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkDetachKeys validates an attach's detachKeys the way dockerd does
// before it hijacks the connection: a comma-separated list of single
// characters, "ctrl-<c>" with <c> one of a-z @ [ \ ] ^ _ (lower case), or
// "DEL".
func checkDetachKeys(keys string) error {
	if keys == "" {
		return nil
	}
	for _, k := range strings.Split(keys, ",") {
		if len(k) == 1 || k == "DEL" {
			continue
		}
		if c, ok := strings.CutPrefix(k, "ctrl-"); ok && len(c) == 1 &&
			(c[0] >= 'a' && c[0] <= 'z' || strings.ContainsRune(`@[\]^_`, rune(c[0]))) {
			continue
		}
		return errdefs.InvalidParameter(fmt.Errorf("Invalid detach keys (%s) provided", keys))
	}
	return nil
}

// hexID matches a full or abbreviated image ID without its algorithm.
var hexID = regexp.MustCompile(`^[a-f0-9]{1,64}$`)

// checkCreateRequest applies what dockerd's create route does before the
// daemon sees the request: per-version defaults and limits, the image
// reference's syntax, and the requested platform (?platform=os/arch).
func (s *Server) checkCreateRequest(r *http.Request, req *container.CreateRequest) error {
	version := apiVersion(r.Context())
	if compareVersions(version, "1.40") < 0 && req.HostConfig.IpcMode == "" {
		// Older clients expect the default to be shareable.
		req.HostConfig.IpcMode = container.IPCModeShareable
	}
	if l := req.HostConfig.PidsLimit; l != nil && *l <= 0 {
		req.HostConfig.PidsLimit = nil // 0 and negatives: no limit
	}
	if compareVersions(version, "1.43") < 0 {
		req.HostConfig.Annotations = nil // added in 1.43
	}
	if compareVersions(version, "1.44") < 0 {
		// Recursive read-only binds came with 1.44 (older clients keep
		// non-recursive ones: the backend asks VersionBefore); refuse
		// rather than ignore a demand to force them, as dockerd does.
		for _, m := range req.HostConfig.Mounts {
			if m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive {
				return errdefs.InvalidParameter(errors.New("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"))
			}
		}
	}
	if eps := req.NetworkingConfig.EndpointsConfig; compareVersions(version, "1.44") < 0 && len(eps) > 1 {
		names := make([]string, 0, len(eps))
		for n := range eps {
			names = append(names, n)
		}
		slices.Sort(names)
		return errdefs.InvalidParameter(fmt.Errorf("Container cannot be created with multiple network endpoints: %s", strings.Join(names, ", ")))
	}
	if req.Config == nil || req.Config.Image == "" {
		return nil // the backend answers with dockerd's message
	}
	img := req.Config.Image
	if !strings.HasPrefix(img, "sha256:") && !hexID.MatchString(img) {
		if _, err := reference.ParseNormalizedNamed(img); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	if p := r.URL.Query().Get("platform"); p != "" {
		return s.checkPlatform(r.Context(), img, p)
	}
	return nil
}

// checkPlatform refuses (not found, as dockerd) an image whose OS or
// architecture differs from the requested "os[/arch[/variant]]".
func (s *Server) checkPlatform(ctx context.Context, img, platform string) error {
	parts := strings.Split(strings.ToLower(platform), "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", platform))
	}
	ii, err := s.backend.ImageInspect(ctx, img)
	if err != nil {
		return err
	}
	match := parts[0] == strings.ToLower(ii.Os)
	if len(parts) > 1 {
		match = match && normaliseArch(parts[1]) == normaliseArch(ii.Architecture)
	}
	if len(parts) > 2 && ii.Variant != "" {
		match = match && parts[2] == strings.ToLower(ii.Variant)
	}
	if !match {
		return errdefs.NotFound(fmt.Errorf("image with reference %s was found but its platform (%s/%s) does not match the specified platform (%s)", img, ii.Os, ii.Architecture, platform))
	}
	return nil
}

func normaliseArch(a string) string {
	switch strings.ToLower(a) {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return strings.ToLower(a)
}
