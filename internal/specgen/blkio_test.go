package specgen

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/internal/errdefs"
)

// TestBlkioDevices: per-device blkio limits reach the spec with the
// device's major:minor read from the host (/dev/null is 1:3 on Linux), a
// path that does not exist fails with Docker's "stat" message, and weight
// devices are dropped where the host cannot apply them.
func TestBlkioDevices(t *testing.T) {
	old := blkioWeightDevice
	t.Cleanup(func() { blkioWeightDevice = old })

	r := container.Resources{
		BlkioWeightDevice:    []*blkiodev.WeightDevice{{Path: "/dev/null", Weight: 300}},
		BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1 << 20}},
		BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 2 << 20}},
		BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 100}},
		BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 50}},
	}
	blkioWeightDevice = func() bool { return true }
	res, err := Resources(&container.HostConfig{Resources: r})
	if err != nil {
		t.Fatalf("Resources: %v", err)
	}
	bio := res.BlockIO
	if bio == nil || len(bio.WeightDevice) != 1 || *bio.WeightDevice[0].Weight != 300 || bio.WeightDevice[0].Major != 1 || bio.WeightDevice[0].Minor != 3 {
		t.Fatalf("weight devices %+v; want 1:3 weight 300", bio)
	}
	for _, tc := range []struct {
		name string
		got  []specs.LinuxThrottleDevice
		rate uint64
	}{
		{"read bps", bio.ThrottleReadBpsDevice, 1 << 20},
		{"write bps", bio.ThrottleWriteBpsDevice, 2 << 20},
		{"read iops", bio.ThrottleReadIOPSDevice, 100},
		{"write iops", bio.ThrottleWriteIOPSDevice, 50},
	} {
		if len(tc.got) != 1 || tc.got[0].Major != 1 || tc.got[0].Minor != 3 || tc.got[0].Rate != tc.rate {
			t.Errorf("%s: %+v; want one 1:3 at %d", tc.name, tc.got, tc.rate)
		}
	}

	blkioWeightDevice = func() bool { return false }
	res, err = Resources(&container.HostConfig{Resources: container.Resources{BlkioWeightDevice: r.BlkioWeightDevice}})
	if err != nil {
		t.Fatalf("Resources without weight-device support: %v", err)
	}
	if res.BlockIO != nil && len(res.BlockIO.WeightDevice) != 0 {
		t.Errorf("weight devices %+v kept on a host without blkio.weight_device", res.BlockIO.WeightDevice)
	}

	_, err = Resources(&container.HostConfig{Resources: container.Resources{
		BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/dev/no-such-device", Rate: 1}},
	}})
	if errdefs.ClassOf(err) != errdefs.ClassInvalidParameter || !strings.Contains(err.Error(), "stat /dev/no-such-device: no such file or directory") {
		t.Errorf("missing device: error %v; want InvalidParameter with the stat message", err)
	}
}
