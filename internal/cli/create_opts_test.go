package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"
)

// parseRunArgs parses `berth run` arguments the way the command does and
// returns the create request parts.
func parseRunArgs(t *testing.T, args ...string) (*containerConfig, *runOptions, error) {
	t.Helper()
	flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flags.SetInterspersed(false)
	var ropts runOptions
	flags.BoolVarP(&ropts.detach, "detach", "d", false, "")
	flags.BoolVar(&ropts.sigProxy, "sig-proxy", true, "")
	flags.StringVar(&ropts.detachKeys, "detach-keys", "", "")
	addCreateFlags(flags, &ropts.create)
	copts := addContainerFlags(flags)
	if err := flags.Parse(args); err != nil {
		return nil, nil, err
	}
	rest := flags.Args()
	copts.Image = rest[0]
	if len(rest) > 1 {
		copts.Args = rest[1:]
	}
	cfg, err := copts.parse(flags)
	if err != nil {
		return nil, nil, err
	}
	if ropts.detach {
		cfg.Config.AttachStdin, cfg.Config.AttachStdout, cfg.Config.AttachStderr = false, false, false
		cfg.Config.StdinOnce = false
	}
	return cfg, &ropts, nil
}

// createBody marshals the create request as the client library sends it.
func createBody(t *testing.T, cfg *containerConfig) map[string]any {
	t.Helper()
	b, err := json.Marshal(container.CreateRequest{Config: cfg.Config, HostConfig: cfg.HostConfig, NetworkingConfig: cfg.NetworkingConfig})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func loadCapture(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// diffJSON lists the paths where got and want differ. Keys that docker
// 28.2.2 sends but the current API types dropped (KernelMemory and the
// like), and null vs empty, are reported too: callers decide what to allow.
func diffJSON(prefix string, got, want any) []string {
	var out []string
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			out = append(out, diffJSON(prefix+"."+k, gm[k], wm[k])...)
		}
		return out
	}
	if !reflect.DeepEqual(got, want) {
		out = append(out, fmt.Sprintf("%s: got %v, want %v", prefix, got, want))
	}
	return out
}

// allowedDiffs lists body paths allowed to differ from docker 28.2.2's
// (none today: the bodies are identical).
var allowedDiffs = map[string]bool{}

func checkAgainstCapture(t *testing.T, capture string, args ...string) {
	t.Helper()
	cfg, _, err := parseRunArgs(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	got := createBody(t, cfg)
	want := loadCapture(t, capture)
	for _, d := range diffJSON("", got, want) {
		path := d[:strings.Index(d, ":")]
		if allowedDiffs[path] {
			continue
		}
		t.Errorf("%s differs from docker 28.2.2: %s", capture, d)
	}
}

func TestCreateBodyMatchesDockerRunDetached(t *testing.T) {
	checkAgainstCapture(t, "run-d.create.json",
		"-d", "--name", "apicap-x", "--label", "apicap=1", "-p", "127.0.0.1:8080:80", "-e", "A=b",
		"-v", "/srv/apicap/vol:/data", "--memory", "64m", "--cpus", "0.5", "busybox", "sleep", "300")
}

func TestCreateBodyMatchesDockerRunRm(t *testing.T) {
	checkAgainstCapture(t, "run-rm.create.json", "--rm", "--label", "apicap=1", "busybox", "echo", "hi")
}

func TestCreateBodyMatchesDockerRunIt(t *testing.T) {
	cfg, _, err := parseRunArgs(t, "-it", "--rm", "--label", "apicap=1", "busybox", "sh", "-c", "echo hi; sleep 2; stty size; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostConfig.ConsoleSize = [2]uint{30, 100} // what the terminal reported
	got := createBody(t, cfg)
	for _, d := range diffJSON("", got, loadCapture(t, "run-it.create.json")) {
		if !allowedDiffs[d[:strings.Index(d, ":")]] {
			t.Errorf("run-it differs from docker 28.2.2: %s", d)
		}
	}
}

func TestCreateFlagMapping(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROMFILE=1\n\nHOMEVAR\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOMEVAR", "h")
	cfg, _, err := parseRunArgs(t,
		"-w", "/work", "-u", "1000:1000", "--entrypoint", "/bin/sh", "-h", "box", "--init", "--read-only",
		"--tmpfs", "/run:size=1m", "-v", "/anon", "-v", "vol:/v:ro", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
		"--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "all", "--security-opt", "no-new-privileges",
		"--memory-swap", "-1", "--memory-reservation", "32m", "-c", "512", "--cpuset-cpus", "0-1",
		"--cpu-quota", "50000", "--cpu-period", "100000", "--pids-limit", "64", "--ulimit", "nofile=1024:2048",
		"--network", "none", "-P", "--expose", "7000-7001/udp", "--stop-signal", "SIGINT", "--stop-timeout", "3",
		"--restart", "on-failure:2", "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2",
		"--add-host", "db:10.0.0.1", "--dns", "1.1.1.1", "--device", "/dev/fuse", "--shm-size", "64m",
		"--sysctl", "net.ipv4.ip_forward=1", "--group-add", "audio", "--oom-kill-disable", "--cgroupns", "private",
		"--ipc", "private", "--pid", "host", "--uts", "host", "--log-driver", "json-file", "--log-opt", "max-size=1m",
		"--env-file", envFile, "-e", "X=1", "-l", "a=b", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	c, h := cfg.Config, cfg.HostConfig
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("WorkingDir", c.WorkingDir, "/work")
	check("User", c.User, "1000:1000")
	check("Entrypoint", c.Entrypoint, []string{"/bin/sh"})
	check("Hostname", c.Hostname, "box")
	check("Env", c.Env, []string{"FROMFILE=1", "HOMEVAR=h", "X=1"})
	check("Labels", c.Labels, map[string]string{"a": "b"})
	check("Volumes", c.Volumes, map[string]struct{}{"/anon": {}})
	check("Binds", h.Binds, []string{"vol:/v:ro"})
	check("StopSignal", c.StopSignal, "SIGINT")
	check("StopTimeout", *c.StopTimeout, 3)
	check("Healthcheck.Test", c.Healthcheck.Test, []string{"CMD-SHELL", "true"})
	check("Healthcheck.Retries", c.Healthcheck.Retries, 2)
	check("ExposedPorts", len(c.ExposedPorts), 2)
	check("Init", *h.Init, true)
	check("ReadonlyRootfs", h.ReadonlyRootfs, true)
	check("Tmpfs", h.Tmpfs, map[string]string{"/run": "size=1m"})
	check("Mounts", h.Mounts, []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}})
	check("Privileged", h.Privileged, true)
	check("CapAdd", h.CapAdd, []string{"NET_ADMIN"})
	check("CapDrop", h.CapDrop, []string{"all"})
	check("SecurityOpt", h.SecurityOpt, []string{"no-new-privileges"})
	check("MemorySwap", h.MemorySwap, int64(-1))
	check("MemoryReservation", h.MemoryReservation, int64(32<<20))
	check("CPUShares", h.CPUShares, int64(512))
	check("CpusetCpus", h.CpusetCpus, "0-1")
	check("CPUQuota", h.CPUQuota, int64(50000))
	check("CPUPeriod", h.CPUPeriod, int64(100000))
	check("PidsLimit", *h.PidsLimit, int64(64))
	check("Ulimits", h.Ulimits[0].Name+fmt.Sprint(h.Ulimits[0].Soft, h.Ulimits[0].Hard), "nofile1024 2048")
	check("NetworkMode", string(h.NetworkMode), "none")
	check("EndpointsConfig", len(cfg.NetworkingConfig.EndpointsConfig), 0)
	check("PublishAllPorts", h.PublishAllPorts, true)
	check("RestartPolicy", h.RestartPolicy, container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2})
	check("ExtraHosts", h.ExtraHosts, []string{"db:10.0.0.1"})
	check("DNS", fmt.Sprint(h.DNS), "[1.1.1.1]")
	check("Devices", h.Devices, []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}})
	check("ShmSize", h.ShmSize, int64(64<<20))
	check("Sysctls", h.Sysctls, map[string]string{"net.ipv4.ip_forward": "1"})
	check("GroupAdd", h.GroupAdd, []string{"audio"})
	check("OomKillDisable", *h.OomKillDisable, true)
	check("CgroupnsMode", string(h.CgroupnsMode), "private")
	check("IpcMode", string(h.IpcMode), "private")
	check("PidMode", string(h.PidMode), "host")
	check("UTSMode", string(h.UTSMode), "host")
	check("LogConfig", h.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}})
}

func TestCreateFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "foo", "busybox"}, `invalid argument "foo" for "-m, --memory" flag: invalid size: 'foo'`},
		{[]string{"--cpus", "abc", "busybox"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{[]string{"-p", "99999:80", "busybox"}, "invalid hostPort: 99999"},
		{[]string{"--rm", "--restart", "always", "busybox"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--restart", "sometimes", "busybox"}, "invalid restart policy: unknown policy 'sometimes'"},
		{[]string{"--no-healthcheck", "--health-cmd", "x", "busybox"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--mount", "type=bind,source=/x", "busybox"}, "target is required"},
		{[]string{"-e", "=x", "busybox"}, "invalid environment variable: =x"},
		{[]string{"--memory-swappiness", "101", "busybox"}, "invalid value: 101. Valid memory swappiness range is 0-100"},
		{[]string{"--pid", "bogus", "busybox"}, "--pid: invalid PID mode"},
		{[]string{"--add-host", "nohost", "busybox"}, "bad format for add-host"},
		{[]string{"-v", "rel:/x:ro:extra", "busybox"}, "too many colons"},
	}
	for _, tc := range cases {
		_, _, err := parseRunArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want containing %q", tc.args, err, tc.want)
		}
	}
}

func TestEntrypointEmptyResets(t *testing.T) {
	cfg, _, err := parseRunArgs(t, "--entrypoint=", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Config.Entrypoint, []string{""}) {
		t.Fatalf("Entrypoint = %#v, want [\"\"] (reset)", cfg.Config.Entrypoint)
	}
}

func TestInteractiveAttachesStdin(t *testing.T) {
	cfg, _, err := parseRunArgs(t, "-i", "busybox", "cat")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if !c.AttachStdin || !c.OpenStdin || !c.StdinOnce || !c.AttachStdout || !c.AttachStderr || c.Tty {
		t.Fatalf("unexpected attach config: %+v", c)
	}
	cfg, _, err = parseRunArgs(t, "-a", "stderr", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.AttachStdout || !cfg.Config.AttachStderr || cfg.Config.AttachStdin {
		t.Fatalf("-a stderr: %+v", cfg.Config)
	}
}
