package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"berth/internal/errdefs"
)

// ipam hands out the addresses of one subnet and remembers them in a JSON
// file, rewritten atomically (temp file + rename) at every change, so that a
// restarted daemon neither reuses a live container's address nor forgets
// which ones are free.
//
// The network address, the gateway and the broadcast address are never
// handed out, nor the reserved (auxiliary) addresses; dynamic addresses
// come from pool, a sub-prefix of the subnet (docker's --ip-range), while
// a static one (ReserveIP) may be anywhere in the subnet.
type ipam struct {
	mu       sync.Mutex
	path     string
	subnet   netip.Prefix
	gateway  netip.Addr
	pool     netip.Prefix
	reserved map[netip.Addr]bool
	// Leases maps a container ID to its address.
	Leases map[string]netip.Addr `json:"leases"`
	// Last is the address handed out last: allocation continues after it so
	// that a freed address is not reused at once (a stale ARP entry or
	// conntrack flow would reach the wrong container).
	Last netip.Addr `json:"last"`
}

func loadIPAM(path string, subnet netip.Prefix) (*ipam, error) {
	a := &ipam{path: path, subnet: subnet.Masked(), gateway: gatewayOf(subnet), pool: subnet.Masked(), Leases: map[string]netip.Addr{}}
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return a, nil
	case err != nil:
		return nil, fmt.Errorf("read IPAM state %s: %w", path, err)
	}
	if err := json.Unmarshal(b, a); err != nil {
		return nil, fmt.Errorf("parse IPAM state %s: %w", path, err)
	}
	if a.Leases == nil {
		a.Leases = map[string]netip.Addr{}
	}
	for id, ip := range a.Leases {
		if !a.subnet.Contains(ip) {
			delete(a.Leases, id) // the subnet changed: those leases are void
		}
	}
	return a, nil
}

// gatewayOf is the subnet's first host address, the bridge's when no
// gateway is configured.
func gatewayOf(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// restrict sets the gateway (invalid: the subnet's first host), the pool of
// dynamic addresses (invalid: the whole subnet) and the reserved
// addresses, checking that each lies in the subnet.
func (a *ipam) restrict(gateway netip.Addr, pool netip.Prefix, reserved []netip.Addr) error {
	if gateway.IsValid() {
		if !a.usable(gateway) {
			return errdefs.InvalidParameter(fmt.Errorf("gateway %s is not a usable host address of %s", gateway, a.subnet))
		}
		a.gateway = gateway
	}
	if pool.IsValid() {
		if pool.Addr().Is4() != a.subnet.Addr().Is4() || pool.Bits() < a.subnet.Bits() || !a.subnet.Contains(pool.Addr()) {
			return errdefs.InvalidParameter(fmt.Errorf("ip-range %s is not within subnet %s", pool, a.subnet))
		}
		a.pool = pool.Masked()
	}
	a.reserved = map[netip.Addr]bool{}
	for _, ip := range reserved {
		if ip.Is4() != a.subnet.Addr().Is4() {
			continue // the other IPAM's
		}
		if !a.subnet.Contains(ip) {
			return errdefs.InvalidParameter(fmt.Errorf("auxiliary address %s is not within subnet %s", ip, a.subnet))
		}
		a.reserved[ip] = true
	}
	return nil
}

// usable reports whether ip is a host address of the subnet: neither the
// network nor the broadcast address.
func (a *ipam) usable(ip netip.Addr) bool {
	return a.subnet.Contains(ip) && ip != a.subnet.Addr() && !isBroadcast(a.subnet, ip)
}

// free reports whether ip may be leased at all: usable, and neither the
// gateway nor a reserved address.
func (a *ipam) free(ip netip.Addr) bool {
	return a.usable(ip) && ip != a.gateway && !a.reserved[ip]
}

// Allocate returns id's address, leasing a free one if it has none.
func (a *ipam) Allocate(id string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.Leases[id]; ok {
		return ip, nil
	}
	used := map[netip.Addr]bool{}
	for _, ip := range a.Leases {
		used[ip] = true
	}
	first := a.pool.Addr()
	start := first
	if a.Last.IsValid() && a.pool.Contains(a.Last) && a.pool.Contains(a.Last.Next()) {
		start = a.Last.Next()
	}
	ip := start
	for used[ip] || !a.free(ip) {
		if ip = ip.Next(); !a.pool.Contains(ip) {
			ip = first
		}
		if ip == start {
			return netip.Addr{}, errdefs.Unavailable(fmt.Errorf("no free address left in %s", a.pool))
		}
	}
	a.Leases[id] = ip
	a.Last = ip
	if err := a.saveLocked(); err != nil {
		delete(a.Leases, id)
		return netip.Addr{}, err
	}
	return ip, nil
}

// Release frees id's address; releasing an unknown ID is not an error.
func (a *ipam) Release(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.Leases[id]; !ok {
		return nil
	}
	delete(a.Leases, id)
	return a.saveLocked()
}

func isBroadcast(p netip.Prefix, ip netip.Addr) bool {
	if !ip.Is4() {
		return false // IPv6 has no broadcast address
	}
	b := ip.As4()
	n := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		m := byte(0xff)
		if hostBits < 8 {
			m = byte(1<<hostBits - 1)
		}
		if b[i]&m != m || n[i]&^m != b[i]&^m {
			return false
		}
		hostBits -= 8
	}
	return true
}

func (a *ipam) saveLocked() error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil {
		return err
	}
	tmp := a.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	if err := os.Rename(tmp, a.path); err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	return nil
}
