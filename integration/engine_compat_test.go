package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Engine behaviours that moby's own integration tests (integration/container,
// `make moby`) check, shown here without that suite.

// TestExecCreateUnknownUser: as dockerd, an exec whose user or group does
// not exist in the container fails at create with a 400 (moby's
// TestExecUser), so an attached client gets an error, not an upgraded
// stream carrying it; a known user still runs.
func TestExecCreateUnknownUser(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })

	for _, tc := range []struct{ user, want string }{
		{"no-such-user", "unable to find user no-such-user: no matching entries in passwd file"},
		{"0:no-such-group", "unable to find group no-such-group: no matching entries in group file"},
	} {
		_, err := cli.ExecCreate(ctx, name, client.ExecCreateOptions{User: tc.user, Cmd: []string{"id"}, AttachStdout: true})
		if err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("exec create -u %s: error %v; want an invalid-argument error containing %q", tc.user, err, tc.want)
		}
	}
	r := e.docker(t, "exec", "-u", "no-such-user", name, "id")
	if r.code == 0 || !strings.Contains(r.stderr, "unable to find user no-such-user") {
		t.Errorf("docker exec -u no-such-user: %s; want a failure naming the user", r)
	}
	r = must(t, e.docker(t, "exec", "-u", "nobody", name, "id", "-u"))
	if strings.TrimSpace(r.stdout) != "65534" {
		t.Errorf("docker exec -u nobody id -u = %q, want 65534", r.stdout)
	}
}

// TestNetworkContainerMode: --network container:<name> runs in the donor's
// network namespace (same interfaces and address, a server on its loopback
// is reachable on the joiner's), with the donor's host name and /etc files,
// and no network of its own in inspect. The settings that would contradict
// the donor's are refused at create with dockerd's messages, and a donor
// that is not running fails the start (moby's TestNetworkLoopbackNat uses
// this mode).
func TestNetworkContainerMode(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	donor := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", donor, "--hostname", "donorhost", "busybox",
		"sh", "-c", "echo served | nc -l -p 7070; sleep 300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", donor) })
	donorIP := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", donor)).stdout)
	if donorIP == "" {
		t.Fatal("the donor has no IP address on the default bridge")
	}

	joiner := donor + "-j"
	r := must(t, e.docker(t, "run", "--name", joiner, "--network", "container:"+donor, "busybox", "sh", "-c",
		"hostname; ip -o -4 addr show eth0; grep -c donorhost /etc/hosts; "+
			"for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 1 127.0.0.1 7070 && exit 0; sleep 0.2; done; exit 1"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", joiner) })
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || lines[0] != "donorhost" || !strings.Contains(lines[1], " "+donorIP+"/") || lines[2] != "1" || lines[3] != "served" {
		t.Errorf("joiner output %q; want the donor's host name, its address %s on eth0, its /etc/hosts entry and the reply of the server on its loopback", r.stdout, donorIP)
	}
	in, err := cli.ContainerInspect(ctx, joiner, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(in.Container.NetworkSettings.Networks); n != 0 || in.Container.Config.Hostname != "donorhost" {
		t.Errorf("joiner inspect: %d networks, hostname %q; want none and the donor's", n, in.Container.Config.Hostname)
	}

	mode := container.NetworkMode("container:" + donor)
	for _, tc := range []struct {
		cfg  container.Config
		hc   container.HostConfig
		want string
	}{
		{container.Config{Hostname: "x"}, container.HostConfig{}, "conflicting options: hostname and the network mode"},
		{container.Config{}, container.HostConfig{DNS: nil, ExtraHosts: []string{"a:10.0.0.1"}}, "conflicting options: custom host-to-IP mapping and the network mode"},
		{container.Config{}, container.HostConfig{PublishAllPorts: true}, "conflicting options: port publishing and the container type network mode"},
	} {
		tc.cfg.Image = "busybox"
		tc.hc.NetworkMode = mode
		_, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &tc.cfg, HostConfig: &tc.hc})
		if err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %+v: error %v; want an invalid-argument error containing %q", tc.hc, err, tc.want)
		}
	}

	stopped := donor + "-s"
	must(t, e.docker(t, "create", "--name", stopped, "busybox", "true"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", stopped) })
	late := donor + "-l"
	must(t, e.docker(t, "create", "--name", late, "--network", "container:"+stopped, "busybox", "true"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", late) })
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = cli.ContainerStart(sctx, late, client.ContainerStartOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot join network namespace of a non running container") {
		t.Errorf("start with a stopped donor: error %v; want dockerd's non-running-container error", err)
	}
}

// TestBlkioDeviceLimits: --device-read-bps / --device-write-iops reach the
// container's blkio cgroup as <major>:<minor> <rate> of the host device, and
// inspect keeps them; a device that does not exist fails the run with
// Docker's stat message.
func TestBlkioDeviceLimits(t *testing.T) {
	e := daemonEnv(t)
	dev, majMin := hostBlockDevice(t)
	r := must(t, e.docker(t, "run", "--rm", "--network", "none", "--device-read-bps", dev+":1mb", "--device-write-iops", dev+":50", "busybox", "sh", "-c",
		"cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device 2>/dev/null || cat /sys/fs/cgroup/io.max"))
	v1 := strings.Contains(r.stdout, majMin+" 1048576") && strings.Contains(r.stdout, majMin+" 50")
	v2 := strings.Contains(r.stdout, majMin+" rbps=1048576") && strings.Contains(r.stdout, "wiops=50")
	if !v1 && !v2 {
		t.Errorf("container's blkio limits %q; want %s read at 1048576 B/s and written at 50 IO/s", r.stdout, majMin)
	}
	name := uniq(t)
	must(t, e.docker(t, "create", "--name", name, "--device-read-bps", dev+":1mb", "busybox", "true"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	r = must(t, e.docker(t, "inspect", "-f", "{{range .HostConfig.BlkioDeviceReadBps}}{{.Path}} {{.Rate}}{{end}}", name))
	if got := strings.TrimSpace(r.stdout); got != dev+" 1048576" {
		t.Errorf("inspect BlkioDeviceReadBps = %q, want %q", got, dev+" 1048576")
	}
	r = e.docker(t, "run", "--rm", "--device-read-bps", "/dev/no-such-disk:1mb", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "stat /dev/no-such-disk: no such file or directory") {
		t.Errorf("run with a missing device: %s; want a failure with the stat message", r)
	}
}

// hostBlockDevice is a whole-disk block device of the host (not a loop,
// ram or zram device) and its "major:minor".
func hostBlockDevice(t *testing.T) (string, string) {
	t.Helper()
	entries, _ := os.ReadDir("/sys/block")
	for _, en := range entries {
		n := en.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		b, err := os.ReadFile("/sys/block/" + n + "/dev")
		if err != nil {
			continue
		}
		if fi, err := os.Stat("/dev/" + n); err == nil && fi.Mode()&os.ModeDevice != 0 {
			return "/dev/" + n, strings.TrimSpace(string(b))
		}
	}
	t.Skip("no whole-disk block device on this host to set blkio limits on")
	return "", ""
}

// TestStatsNetworks: stats report the counters of the container's own
// interfaces (eth0, not lo), which grow with its traffic; a container on
// the host's network reports none (moby's TestStatsNetworkStats).
func TestStatsNetworks(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sleep", "300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	gw := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.NetworkSettings.Gateway}}", name)).stdout)
	before := statsNetworks(t, ctx, cli, name)
	if _, ok := before["lo"]; ok {
		t.Errorf("stats networks %v include lo", before)
	}
	must(t, e.docker(t, "exec", name, "ping", "-c", "2", "-W", "2", gw))
	after := statsNetworks(t, ctx, cli, name)
	if after["eth0"].TxPackets < before["eth0"].TxPackets+2 || after["eth0"].RxPackets < before["eth0"].RxPackets+2 {
		t.Errorf("eth0 counters before %+v, after 2 pings of %s %+v; want tx and rx up by 2 or more", before["eth0"], gw, after["eth0"])
	}

	host := name + "-host"
	must(t, e.docker(t, "run", "-d", "--name", host, "--network", "host", "busybox", "sleep", "300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", host) })
	if n := statsNetworks(t, ctx, cli, host); len(n) != 0 {
		t.Errorf("--network host container's stats networks %v; want none", n)
	}
}

func statsNetworks(t *testing.T, ctx context.Context, cli *client.Client, id string) map[string]container.NetworkStats {
	t.Helper()
	res, err := cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		t.Fatalf("stats %s: %v", id, err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("decode stats of %s: %v", id, err)
	}
	return st.Networks
}

// TestStateEventsBeforeReply: the pause, unpause and update events are
// published before the API replies, so asking for the events up to "now"
// right after the commands lists all of them (moby's TestPause).
func TestStateEventsBeforeReply(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	must(t, e.docker(t, "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "300"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", name) })
	since := time.Now()
	for i := 0; i < 5; i++ {
		must(t, e.docker(t, "pause", name))
		must(t, e.docker(t, "unpause", name))
		must(t, e.docker(t, "update", "--cpu-shares", fmt.Sprint(512+i), name))
	}
	until := time.Now()
	r := must(t, e.docker(t, "events", "--since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		"--until", fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond()), "--filter", "container="+name, "--format", "{{.Action}}"))
	want := strings.Repeat("pause\nunpause\nupdate\n", 5)
	if r.stdout != want {
		t.Errorf("events up to the last reply:\n%s\nwant:\n%s", r.stdout, want)
	}
}
