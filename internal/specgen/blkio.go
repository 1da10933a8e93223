package specgen

import (
	"fmt"
	"os"
	"sync"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// blkioDevices adds the per-device blkio limits (--blkio-weight-device,
// --device-read-bps, --device-write-bps, --device-read-iops,
// --device-write-iops) to bio, each device path resolved on the host to
// its major:minor as Docker does. A path that cannot be stat'ed fails with
// Docker's "stat <path>: ..." message.
func blkioDevices(r container.Resources, bio *specs.LinuxBlockIO) error {
	for _, wd := range r.BlkioWeightDevice {
		if wd == nil || !blkioWeightDevice() {
			// Docker discards weight devices the host cannot apply
			// (with a warning) rather than failing the start.
			continue
		}
		major, minor, err := deviceNumbers(wd.Path)
		if err != nil {
			return err
		}
		w := wd.Weight
		d := specs.LinuxWeightDevice{Weight: &w}
		d.Major, d.Minor = major, minor
		bio.WeightDevice = append(bio.WeightDevice, d)
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &bio.ThrottleReadBpsDevice},
		{r.BlkioDeviceWriteBps, &bio.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &bio.ThrottleReadIOPSDevice},
		{r.BlkioDeviceWriteIOps, &bio.ThrottleWriteIOPSDevice},
	} {
		for _, td := range t.in {
			if td == nil {
				continue
			}
			major, minor, err := deviceNumbers(td.Path)
			if err != nil {
				return err
			}
			d := specs.LinuxThrottleDevice{Rate: td.Rate}
			d.Major, d.Minor = major, minor
			*t.out = append(*t.out, d)
		}
	}
	return nil
}

// blkioWeightDevice reports whether the host can set per-device blkio
// weights: cgroup v2's io.weight always can, v1 needs blkio.weight_device
// (CFQ; the BFQ file alone is what Docker also treats as unsupported). A
// variable so tests can pin it.
var blkioWeightDevice = sync.OnceValue(func() bool {
	if cgroupV2() {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight_device")
	return err == nil
})

// deviceNumbers is the major and minor number of the device file at path
// on the host.
func deviceNumbers(path string) (major, minor int64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("stat %s: %w", path, err))
	}
	rdev := uint64(st.Rdev) //nolint:unconvert // 32 bits on some platforms
	return int64(unix.Major(rdev)), int64(unix.Minor(rdev)), nil
}
