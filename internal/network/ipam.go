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
// The network address, the gateway (first host) and the broadcast address
// are never handed out.
type ipam struct {
	mu     sync.Mutex
	path   string
	subnet netip.Prefix
	// Leases maps a container ID to its address.
	Leases map[string]netip.Addr `json:"leases"`
	// Last is the address handed out last: allocation continues after it so
	// that a freed address is not reused at once (a stale ARP entry or
	// conntrack flow would reach the wrong container).
	Last netip.Addr `json:"last"`
}

func loadIPAM(path string, subnet netip.Prefix) (*ipam, error) {
	a := &ipam{path: path, subnet: subnet.Masked(), Leases: map[string]netip.Addr{}}
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

// gateway is the subnet's first host address, given to the bridge.
func gatewayOf(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

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
	first := gatewayOf(a.subnet).Next()
	start := first
	if a.Last.IsValid() && a.subnet.Contains(a.Last) {
		start = a.Last.Next()
	}
	ip := start
	for {
		if !a.subnet.Contains(ip) || isBroadcast(a.subnet, ip) {
			ip = first
		}
		if !used[ip] {
			break
		}
		ip = ip.Next()
		if ip == start {
			return netip.Addr{}, errdefs.Unavailable(fmt.Errorf("no free address left in %s", a.subnet))
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
