package daemon

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestParseNetDev(t *testing.T) {
	const table = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1866      19    1    2    0     0          0         0      714       9    3    4    0     0       0          0
  eth1: 18446744073709551615 5 0 0 0 0 0 0 7 1 0 0 0 0 0 0
`
	got, err := parseNetDev(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]container.NetworkStats{
		"eth0": {RxBytes: 1866, RxPackets: 19, RxErrors: 1, RxDropped: 2, TxBytes: 714, TxPackets: 9, TxErrors: 3, TxDropped: 4},
		"eth1": {RxBytes: 18446744073709551615, RxPackets: 5, TxBytes: 7, TxPackets: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("parseNetDev = %+v; want %+v (no lo)", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
	if _, err := parseNetDev(strings.NewReader("h1\nh2\n eth0: 1 2 3\n")); err == nil {
		t.Error("a short line parsed without error")
	}
}
