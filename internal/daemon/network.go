package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/internal/errdefs"
	berthnet "berth/internal/network"
)

// bridged reports whether a network mode puts the container on the default
// bridge (the only network berth wires up so far).
func bridged(mode container.NetworkMode) bool {
	return mode == "" || mode == "default" || mode == "bridge"
}

// checkNetworkMode refuses, at start as dockerd does, a network that does
// not exist.
func (d *Daemon) checkNetworkMode(mode container.NetworkMode) error {
	switch {
	case bridged(mode), mode.IsNone(), mode.IsHost(), mode.IsContainer():
		return nil
	}
	_, err := d.findUserNet(string(mode))
	return err
}

// managerFor is the bridge network a container joins: the default one or a
// user-defined one (nil for none, host and container: modes).
func (d *Daemon) managerFor(mode container.NetworkMode) *berthnet.Manager {
	switch {
	case bridged(mode):
		return d.net
	case mode.IsNone(), mode.IsHost(), mode.IsContainer():
		return nil
	}
	if n, err := d.findUserNet(string(mode)); err == nil {
		return n.mgr
	}
	return nil
}

// exposedPorts merges the image's EXPOSE with the container's --expose.
func exposedPorts(cfg *container.Config, img *ocispec.ImageConfig) network.PortSet {
	out := network.PortSet{}
	for p := range cfg.ExposedPorts {
		out[p] = struct{}{}
	}
	if img != nil {
		for s := range img.ExposedPorts {
			if p, err := network.ParsePort(s); err == nil {
				out[p] = struct{}{}
			}
		}
	}
	return out
}

// attachNetwork connects a bridged container before its start and records
// the endpoint on c; it returns the netns path the spec joins ("" when the
// container is not bridged).
func (d *Daemon) attachNetwork(c *Container, img *ocispec.ImageConfig) (string, error) {
	mgr := d.managerFor(c.HostConfig.NetworkMode)
	if mgr == nil {
		return "", nil
	}
	bindings := berthnet.Bindings(c.HostConfig.PortBindings, exposedPorts(c.Config, img), c.HostConfig.PublishAllPorts)
	if err := reserveEndpoint(mgr, c.ID, c.NetworkIP, c.NetworkIP6, c.NetworkMAC); err != nil {
		return "", fmt.Errorf("connect container %s to network %s: %w", c.ID[:12], c.HostConfig.NetworkMode, err)
	}
	ep, err := mgr.Attach(c.ID, bindings)
	if err != nil {
		if errdefs.IsConflict(err) {
			// docker's wording; the CLI prints it and exits 125
			return "", errdefs.Conflict(fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", strings.TrimPrefix(c.Name, "/"), c.ID[:12], err))
		}
		return "", fmt.Errorf("connect container %s to the bridge: %w", c.ID[:12], err)
	}
	if !bridged(c.HostConfig.NetworkMode) {
		if err := d.userNetAttached(c, string(c.HostConfig.NetworkMode), ep); err != nil {
			if derr := mgr.Detach(c.ID); derr != nil {
				d.log.Warn("detach network", "id", c.ID, "err", derr)
			}
			return "", fmt.Errorf("connect container %s to network %s: %w", c.ID[:12], c.HostConfig.NetworkMode, err)
		}
	}
	c.mu.Lock()
	c.Endpoint = ep
	c.mu.Unlock()
	if err := d.addOwnHost(c, ep); err != nil {
		d.detachNetwork(c)
		return "", err
	}
	if err := d.joinNetworks(c); err != nil {
		d.detachNetwork(c)
		return "", err
	}
	return ep.NetnsPath, nil
}

// detachNetwork undoes attachNetwork after the container's exit (or a failed
// start).
func (d *Daemon) detachNetwork(c *Container) {
	d.leaveNetworks(c)
	c.mu.Lock()
	ep := c.Endpoint
	c.Endpoint = nil
	c.mu.Unlock()
	mgr := d.managerFor(c.HostConfig.NetworkMode)
	if mgr == nil {
		if ep != nil {
			// disconnected from its last network while it ran: only the
			// namespace (lo) is left
			if err := berthnet.ReleaseNetns(ep.NetnsPath); err != nil {
				d.log.Warn("detach network", "id", c.ID, "err", err)
			}
		}
		return
	}
	if err := mgr.Detach(c.ID); err != nil {
		d.log.Warn("detach network", "id", c.ID, "err", err)
	}
}

// networkSettings fills inspect's NetworkSettings; c.mu held.
func (d *Daemon) networkSettings(c *Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: network.PortMap{}, Networks: networksOf(c)}
	ep := c.Endpoint
	if ep == nil {
		if bridged(c.HostConfig.NetworkMode) {
			ns.Ports = berthnet.PortMap(nil, c.Config.ExposedPorts)
		}
		d.joinedSettings(c, ns.Networks)
		return ns
	}
	ns.SandboxKey = ep.NetnsPath
	ns.Ports = berthnet.PortMap(ep.Ports, c.Config.ExposedPorts)
	key, netID := "bridge", "bridge"
	if !bridged(c.HostConfig.NetworkMode) {
		key = string(c.HostConfig.NetworkMode)
		netID = key
		if id, ok := d.unets.ids.Load(key); ok {
			netID = id.(string)
		}
	}
	if es := ns.Networks[key]; es != nil {
		es.NetworkID = netID
		if key != "bridge" {
			es.Aliases = c.NetworkAliases
			es.DNSNames = containerDNSNames(c, c.NetworkAliases)
		}
		es.EndpointID = c.ID
		es.IPAddress, es.IPPrefixLen, es.Gateway = ep.IP, ep.PrefixLen, ep.Gateway
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = ep.IP6, ep.PrefixLen6, ep.Gateway6
		if mac, err := net.ParseMAC(ep.MacAddress); err == nil {
			es.MacAddress = network.HardwareAddr(mac)
		}
		if c.NetworkIP.IsValid() || c.NetworkIP6.IsValid() {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: c.NetworkIP, IPv6Address: c.NetworkIP6}
		}
	}
	d.joinedSettings(c, ns.Networks)
	return ns
}

// portSummaries lists ps's ports; c.mu held.
func portSummaries(c *Container) []container.PortSummary {
	out := []container.PortSummary{}
	if c.Endpoint != nil {
		for _, m := range c.Endpoint.Ports {
			ip := m.HostIP
			if !ip.IsValid() {
				ip = netip.IPv4Unspecified()
			}
			out = append(out, container.PortSummary{IP: ip, PrivatePort: m.ContainerPort, PublicPort: m.HostPort, Type: m.Proto})
		}
	}
	published := map[string]bool{}
	for _, p := range out {
		published[fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)] = true
	}
	for p := range c.Config.ExposedPorts {
		if !published[p.String()] {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PrivatePort != out[j].PrivatePort {
			return out[i].PrivatePort < out[j].PrivatePort
		}
		return out[i].PublicPort < out[j].PublicPort
	})
	return out
}

// hostGateway is the address `--add-host NAME:host-gateway` stands for: the
// host's address on the container's first network (its gateway), which the
// container reaches without a route, even on an --internal network.
// dockerd uses the default bridge's address instead; both are the host.
// With host networking (or none), 127.0.0.1.
func (d *Daemon) hostGateway(c *Container) string {
	mode := c.HostConfig.NetworkMode
	if bridged(mode) {
		return d.net.Gateway().String()
	}
	if n, err := d.findUserNet(string(mode)); err == nil {
		return n.mgr.Gateway().String()
	}
	if mode.IsHost() {
		return "127.0.0.1"
	}
	return d.net.Gateway().String()
}

// addOwnHost appends the container's own address and host name to the
// /etc/hosts that writeEtcFiles wrote before the start, as dockerd does
// (the address is known only now).
func (d *Daemon) addOwnHost(c *Container, ep *berthnet.Endpoint) error {
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	if c.Config.Domainname != "" {
		hostname += "." + c.Config.Domainname + " " + hostname
	}
	line := fmt.Sprintf("%s\t%s\n", ep.IP, hostname)
	if ep.IP6.IsValid() {
		line += fmt.Sprintf("%s\t%s\n", ep.IP6, hostname)
	}
	p := filepath.Join(d.containerDir(c.ID), "hosts")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("add own address to /etc/hosts of %s: %w", c.ID[:12], err)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
