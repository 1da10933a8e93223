package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"berth/internal/network"
)

// Each test daemon gets a bridge and subnet of its own, so that daemons
// running side by side (in this process or in parallel test binaries) never
// share a bridge or an nftables table. The same dir always maps to the same
// pair: a restarted env finds its network again.
var (
	bridgeMu   sync.Mutex
	bridgeIdx  = map[string]int{}
	bridgeNext = os.Getpid() % 120
)

func testBridge(dir string) (name, subnet string) {
	bridgeMu.Lock()
	defer bridgeMu.Unlock()
	i, ok := bridgeIdx[dir]
	if !ok {
		i = bridgeNext % 120
		bridgeNext++
		bridgeIdx[dir] = i
	}
	return fmt.Sprintf("bt%d-%d", os.Getpid()%100000, i), fmt.Sprintf("10.209.%d.0/24", 128+i)
}

// removeTestBridge deletes the bridge and nftables table of dir's daemon.
func removeTestBridge(dir string) {
	name, subnet := testBridge(dir)
	m, err := network.New(network.Config{
		BridgeName: name, Subnet: netip.MustParsePrefix(subnet),
		StateDir: filepath.Join(dir, "data", "network"), NetnsDir: filepath.Join(dir, "exec", "netns"),
	})
	if err == nil {
		m.Remove()
	}
}
