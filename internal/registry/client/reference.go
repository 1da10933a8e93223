package client

import (
	"fmt"
	"net"
	"strings"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
)

// Docker Hub: references name "docker.io", the API lives elsewhere.
const (
	hubDomain   = "docker.io"
	hubEndpoint = "registry-1.docker.io"
)

// ParseReference normalizes a user's reference the way docker does:
// "busybox" is docker.io/library/busybox:latest, a digest wins over a tag
// for fetching but both are kept ("host:5000/ns/repo:tag@sha256:...").
func ParseReference(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format %q: %w", s, err))
	}
	return reference.TagNameOnly(named), nil
}

// endpointHost is the host:port the registry API of named's domain is
// served on.
func endpointHost(named reference.Named) string {
	d := reference.Domain(named)
	if d == hubDomain || d == "index.docker.io" {
		return hubEndpoint
	}
	return d
}

// isLoopback tells whether host (with or without a port) is the local
// machine: such registries are spoken to over plain HTTP, as docker treats
// 127.0.0.0/8 as insecure by default.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// manifestRef is the tag or digest a manifest is fetched by: the digest
// when there is one.
func manifestRef(named reference.Named) string {
	if d, ok := named.(reference.Digested); ok {
		return d.Digest().String()
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}
