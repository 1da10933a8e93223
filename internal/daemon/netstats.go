package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// netStats reads the interface counters of the network namespace of the
// process pid (the container's init) from /proc/<pid>/net/dev, keyed by
// interface name as dockerd reports them in stats' "networks"; the
// loopback is left out, as dockerd counts only the endpoints' interfaces.
func netStats(pid int) (map[string]container.NetworkStats, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, fmt.Errorf("network stats of pid %d: %w", pid, err)
	}
	defer f.Close()
	return parseNetDev(f)
}

// parseNetDev parses the /proc/net/dev table: two header lines, then
// "<ifname>: <8 receive counters> <8 transmit counters>".
func parseNetDev(r io.Reader) (map[string]container.NetworkStats, error) {
	out := map[string]container.NetworkStats{}
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if line < 2 || !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("parse /proc/net/dev line %d %q: %d fields, want 16", line+1, sc.Text(), len(f))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse /proc/net/dev line %d: %w", line+1, err)
			}
			v[i] = n
		}
		if name == "lo" {
			continue
		}
		out[name] = container.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	return out, sc.Err()
}
