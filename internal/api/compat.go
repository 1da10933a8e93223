package api

import (
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// The Go types are those of API 1.52+, while clients negotiate older
// versions (docker CLI 28 speaks 1.50). Where 1.52 changed a response shape
// that older clients decode, the older shape is rebuilt here, per request
// version, the way dockerd keeps old clients working.

// legacyShapes reports whether a request version predates API 1.52.
func legacyShapes(version string) bool {
	return compareVersions(version, "1.52") < 0
}

// legacyDiskUsage is GET /system/df before 1.52: flat lists, no per-type
// usage objects.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

func diskUsageCompat(du *system.DiskUsage) legacyDiskUsage {
	out := legacyDiskUsage{
		Images:     []image.Summary{},
		Containers: []container.Summary{},
		Volumes:    []volume.Volume{},
		BuildCache: []build.CacheRecord{},
	}
	if u := du.ImageUsage; u != nil {
		out.LayersSize = u.TotalSize
		if u.Items != nil {
			out.Images = u.Items
		}
	}
	if u := du.ContainerUsage; u != nil && u.Items != nil {
		out.Containers = u.Items
	}
	if u := du.VolumeUsage; u != nil && u.Items != nil {
		out.Volumes = u.Items
	}
	if u := du.BuildCacheUsage; u != nil && u.Items != nil {
		out.BuildCache = u.Items
	}
	return out
}

// legacyNetworkSettings adds the top-level address fields that API 1.52
// dropped from NetworkSettings; scripts read them with
// `docker inspect -f '{{.NetworkSettings.IPAddress}}'`. They describe the
// endpoint on the default bridge network, as dockerd did.
type legacyNetworkSettings struct {
	*container.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

// legacyInspect shadows InspectResponse.NetworkSettings (a shallower field
// wins in encoding/json).
type legacyInspect struct {
	*container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

func inspectLegacy(c *container.InspectResponse) legacyInspect {
	ns := &legacyNetworkSettings{NetworkSettings: c.NetworkSettings}
	if ep := c.NetworkSettings.Networks["bridge"]; ep != nil {
		ns.EndpointID = ep.EndpointID
		if ep.Gateway.IsValid() {
			ns.Gateway = ep.Gateway.String()
		}
		if ep.IPAddress.IsValid() {
			ns.IPAddress = ep.IPAddress.String()
		}
		ns.IPPrefixLen = ep.IPPrefixLen
		if ep.IPv6Gateway.IsValid() {
			ns.IPv6Gateway = ep.IPv6Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			ns.GlobalIPv6Address = ep.GlobalIPv6Address.String()
		}
		ns.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		ns.MacAddress = ep.MacAddress.String()
	}
	return legacyInspect{InspectResponse: c, NetworkSettings: ns}
}
