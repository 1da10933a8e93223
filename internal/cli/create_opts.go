package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
)

// containerOptions are the flags shared by `run` and `create`.
type containerOptions struct {
	attach      *listOpts
	stdin       bool
	tty         bool
	autoRemove  bool
	name        string
	hostname    string
	domainname  string
	user        string
	workingDir  string
	entrypoint  string
	env         *listOpts
	envFile     *listOpts
	labels      *listOpts
	labelsFile  *listOpts
	init        bool
	readonly    bool
	tmpfs       *listOpts
	volumes     *listOpts
	volumesFrom *listOpts
	mounts      mountOpts
	privileged  bool
	capAdd      *listOpts
	capDrop     *listOpts
	securityOpt *listOpts

	memory            memBytes
	memorySwap        memSwapBytes
	memoryReservation memBytes
	swappiness        int64
	cpus              nanoCPUs
	cpuShares         int64
	cpusetCpus        string
	cpusetMems        string
	cpuQuota          int64
	cpuPeriod         int64
	pidsLimit         int64
	ulimits           ulimitOpts
	oomKillDisable    bool
	oomScoreAdj       int
	shmSize           memBytes
	cgroupParent      string

	network     []string
	ip          string
	ip6         string
	mac         string
	aliases     *listOpts
	publish     *listOpts
	publishAll  bool
	expose      *listOpts
	addHost     *listOpts
	dns         *listOpts
	dnsSearch   *listOpts
	dnsOptions  *listOpts
	stopSignal  string
	stopTimeout int
	restart     string

	healthCmd         string
	healthInterval    time.Duration
	healthTimeout     time.Duration
	healthStartPeriod time.Duration
	healthStartIntvl  time.Duration
	healthRetries     int
	noHealthcheck     bool
	healthOnFailure   string // berth: none|restart|stop|kill

	devices      *listOpts
	sysctls      mapOpts
	groupAdd     *listOpts
	cgroupnsMode string
	ipcMode      string
	pidMode      string
	utsMode      string
	usernsMode   string
	logDriver    string
	logOpts      *listOpts
	runtime      string

	// Set from positional arguments.
	Image string
	Args  []string
}

// createFlags are the create-time flags that are not container config.
type createFlags struct {
	pull     string
	platform string
	quiet    bool
}

func addContainerFlags(flags *pflag.FlagSet) *containerOptions {
	o := &containerOptions{
		attach:      newListOpts(validateAttach),
		env:         newListOpts(validateEnv),
		envFile:     newListOpts(nil),
		labels:      newListOpts(validateLabel),
		labelsFile:  newListOpts(nil),
		tmpfs:       newListOpts(nil),
		volumes:     newListOpts(nil),
		volumesFrom: newListOpts(nil),
		capAdd:      newListOpts(nil),
		capDrop:     newListOpts(nil),
		securityOpt: newListOpts(nil),
		publish:     newListOpts(nil),
		expose:      newListOpts(nil),
		addHost:     newListOpts(validateExtraHost),
		aliases:     newListOpts(nil),
		dns:         newListOpts(validateIP),
		dnsSearch:   newListOpts(nil),
		dnsOptions:  newListOpts(nil),
		devices:     newListOpts(nil),
		groupAdd:    newListOpts(nil),
		logOpts:     newListOpts(nil),
		sysctls:     mapOpts{validator: validateSysctl},
	}

	flags.VarP(o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	flags.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	flags.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	flags.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	flags.StringVar(&o.name, "name", "", "Assign a name to the container")
	flags.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	flags.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	flags.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	flags.StringVarP(&o.workingDir, "workdir", "w", "", "Working directory inside the container")
	flags.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	flags.VarP(o.env, "env", "e", "Set environment variables")
	flags.Var(o.envFile, "env-file", "Read in a file of environment variables")
	flags.VarP(o.labels, "label", "l", "Set meta data on a container")
	flags.Var(o.labelsFile, "label-file", "Read in a line delimited file of labels")
	flags.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	flags.BoolVar(&o.readonly, "read-only", false, "Mount the container's root filesystem as read only")
	flags.Var(o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	flags.VarP(o.volumes, "volume", "v", "Bind mount a volume")
	flags.Var(o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	flags.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	flags.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	flags.Var(o.capAdd, "cap-add", "Add Linux capabilities")
	flags.Var(o.capDrop, "cap-drop", "Drop Linux capabilities")
	flags.Var(o.securityOpt, "security-opt", "Security Options")

	flags.VarP(&o.memory, "memory", "m", "Memory limit")
	flags.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	flags.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	flags.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	flags.Var(&o.cpus, "cpus", "Number of CPUs")
	flags.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	flags.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	flags.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	flags.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	flags.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	flags.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	flags.Var(&o.ulimits, "ulimit", "Ulimit options")
	flags.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	flags.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	flags.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	flags.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")

	flags.StringArrayVar(&o.network, "network", nil, "Connect a container to a network")
	flags.StringArrayVar(&o.network, "net", nil, "Connect a container to a network")
	_ = flags.MarkHidden("net")
	flags.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	flags.StringVar(&o.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	flags.StringVar(&o.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	flags.Var(o.aliases, "network-alias", "Add network-scoped alias for the container")
	flags.Var(o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = flags.MarkHidden("net-alias")
	flags.VarP(o.publish, "publish", "p", "Publish a container's port(s) to the host")
	flags.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	flags.Var(o.expose, "expose", "Expose a port or a range of ports")
	flags.Var(o.addHost, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	flags.Var(o.dns, "dns", "Set custom DNS servers")
	flags.Var(o.dnsSearch, "dns-search", "Set custom DNS search domains")
	flags.Var(o.dnsOptions, "dns-option", "Set DNS options")
	flags.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	flags.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	flags.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")

	flags.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	flags.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	flags.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	flags.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	flags.DurationVar(&o.healthStartIntvl, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	flags.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	flags.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	flags.StringVar(&o.healthOnFailure, "health-on-failure", "", "Action when the container turns unhealthy: none, restart, stop, kill (berth)")

	flags.Var(o.devices, "device", "Add a host device to the container")
	flags.Var(&o.sysctls, "sysctl", "Sysctl options")
	flags.Var(o.groupAdd, "group-add", "Add additional groups to join")
	flags.StringVar(&o.cgroupnsMode, "cgroupns", "", "Cgroup namespace to use (host|private)")
	flags.StringVar(&o.ipcMode, "ipc", "", "IPC mode to use")
	flags.StringVar(&o.pidMode, "pid", "", "PID namespace to use")
	flags.StringVar(&o.utsMode, "uts", "", "UTS namespace to use")
	flags.StringVar(&o.usernsMode, "userns", "", "User namespace to use")
	flags.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	flags.Var(o.logOpts, "log-opt", "Log driver options")
	flags.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	return o
}

func addCreateFlags(flags *pflag.FlagSet, c *createFlags) {
	flags.StringVar(&c.pull, "pull", pullMissing, `Pull image before running ("always", "missing", "never")`)
	flags.StringVar(&c.platform, "platform", os.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	flags.BoolVarP(&c.quiet, "quiet", "q", false, "Suppress the pull output")
}

const (
	pullAlways  = "always"
	pullMissing = "missing"
	pullNever   = "never"
)

func validatePullOpt(v string) error {
	switch v {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", v, pullAlways, pullMissing, pullNever)
}

func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// containerConfig is the create request body in three parts.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parse turns the flags into the create request, the way docker 28.2.2
// does, including its zero values ({} vs null) so that the daemon sees the
// same body.
func (o *containerOptions) parse(flags *pflag.FlagSet) (*containerConfig, error) {
	attachStdin := contains(o.attach.values, "stdin") || o.stdin
	attachStdout := contains(o.attach.values, "stdout")
	attachStderr := contains(o.attach.values, "stderr")
	if len(o.attach.values) == 0 {
		attachStdout, attachStderr = true, true
	}

	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	// -v: a source makes it a bind (host path or named volume); a bare
	// path is an anonymous volume.
	volumes := map[string]struct{}{}
	var binds []string
	for _, v := range o.volumes.values {
		if err := validateVolumeSpec(v); err != nil {
			return nil, err
		}
		if strings.Contains(v, ":") {
			binds = append(binds, v)
		} else {
			volumes[v] = struct{}{}
		}
	}

	var tmpfs map[string]string
	if len(o.tmpfs.values) > 0 {
		tmpfs = map[string]string{}
		for _, t := range o.tmpfs.values {
			dst, opts, _ := strings.Cut(t, ":")
			if !strings.HasPrefix(dst, "/") {
				return nil, fmt.Errorf("invalid mount path for tmpfs: %s (must be absolute)", dst)
			}
			tmpfs[dst] = opts
		}
	}

	var cmd, entrypoint []string
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	if o.entrypoint != "" {
		entrypoint = []string{o.entrypoint}
	} else if flags.Changed("entrypoint") {
		entrypoint = []string{""}
	}

	exposed, bindings, err := parsePublish(o.publish.values, o.expose.values)
	if err != nil {
		return nil, err
	}

	devices := []container.DeviceMapping{}
	for _, d := range o.devices.values {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}

	env, err := readKVStrings(o.envFile.values, o.env.values, true)
	if err != nil {
		return nil, err
	}
	labelList, err := readKVStrings(o.labelsFile.values, o.labels.values, false)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for _, l := range labelList {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}

	if m := container.PidMode(o.pidMode); !m.Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	if m := container.UTSMode(o.utsMode); !m.Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	if m := container.UsernsMode(o.usernsMode); !m.Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	if m := container.CgroupnsMode(o.cgroupnsMode); !m.Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}
	if m := container.IpcMode(o.ipcMode); !m.Valid() {
		return nil, errors.New("--ipc: invalid IPC mode")
	}

	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	logConfig := map[string]string{}
	for _, l := range o.logOpts.values {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("invalid key-value pair: %s", l)
		}
		logConfig[k] = v
	}
	if o.logDriver == "none" && len(logConfig) > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.logDriver)
	}

	securityOpts, maskedPaths, readonlyPaths, err := parseSecurityOpts(o.securityOpt.values)
	if err != nil {
		return nil, err
	}

	health, err := o.healthConfig()
	if err != nil {
		return nil, err
	}

	dns := make([]netip.Addr, 0, len(o.dns.values))
	for _, d := range o.dns.values {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("%s is not an ip address", d)
		}
		dns = append(dns, a)
	}

	swappiness := o.swappiness
	oomKillDisable := o.oomKillDisable
	pidsLimit := o.pidsLimit
	resources := container.Resources{
		CgroupParent:         o.cgroupParent,
		Memory:               int64(o.memory),
		MemoryReservation:    int64(o.memoryReservation),
		MemorySwap:           int64(o.memorySwap),
		MemorySwappiness:     &swappiness,
		OomKillDisable:       &oomKillDisable,
		NanoCPUs:             int64(o.cpus),
		CPUShares:            o.cpuShares,
		CPUPeriod:            o.cpuPeriod,
		CPUQuota:             o.cpuQuota,
		CpusetCpus:           o.cpusetCpus,
		CpusetMems:           o.cpusetMems,
		PidsLimit:            &pidsLimit,
		BlkioWeightDevice:    []*blkiodev.WeightDevice{},
		Ulimits:              o.ulimits.values,
		Devices:              devices,
		BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{},
		BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{},
		BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{},
		BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{},
	}
	if resources.Ulimits == nil {
		resources.Ulimits = []*container.Ulimit{}
	}

	config := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		ExposedPorts: exposed,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		Env:          env,
		Cmd:          cmd,
		Healthcheck:  health,
		Image:        o.Image,
		Volumes:      volumes,
		WorkingDir:   o.workingDir,
		Entrypoint:   entrypoint,
		Labels:       labels,
	}
	if flags.Changed("stop-signal") {
		config.StopSignal = o.stopSignal
	}
	if flags.Changed("stop-timeout") {
		t := o.stopTimeout
		config.StopTimeout = &t
	}
	// With stdin attached, the daemon closes it when the client goes.
	if config.OpenStdin && config.AttachStdin {
		config.StdinOnce = true
	}

	networkMode := ""
	if len(o.network) > 0 {
		networkMode = o.network[0]
	}
	if networkMode == "" {
		networkMode = network.NetworkDefault
	}

	hostConfig := &container.HostConfig{
		Binds:           binds,
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: logConfig},
		NetworkMode:     container.NetworkMode(networkMode),
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      o.autoRemove,
		VolumesFrom:     o.volumesFrom.GetAll(),
		CapAdd:          o.capAdd.GetAll(),
		CapDrop:         o.capDrop.GetAll(),
		CgroupnsMode:    container.CgroupnsMode(o.cgroupnsMode),
		DNS:             dns,
		DNSOptions:      o.dnsOptions.GetAllOrEmpty(),
		DNSSearch:       o.dnsSearch.GetAllOrEmpty(),
		ExtraHosts:      o.addHost.GetAll(),
		GroupAdd:        o.groupAdd.GetAll(),
		IpcMode:         container.IpcMode(o.ipcMode),
		OomScoreAdj:     o.oomScoreAdj,
		PidMode:         container.PidMode(o.pidMode),
		Privileged:      o.privileged,
		PublishAllPorts: o.publishAll,
		ReadonlyRootfs:  o.readonly,
		SecurityOpt:     securityOpts,
		Tmpfs:           tmpfs,
		UTSMode:         container.UTSMode(o.utsMode),
		UsernsMode:      container.UsernsMode(o.usernsMode),
		ShmSize:         int64(o.shmSize),
		Sysctls:         o.sysctls.values,
		Runtime:         o.runtime,
		Resources:       resources,
		Mounts:          o.mounts.values,
		MaskedPaths:     maskedPaths,
		ReadonlyPaths:   readonlyPaths,
	}
	if o.autoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	switch o.healthOnFailure {
	case "":
	case "none", "restart", "stop", "kill":
		hostConfig.Annotations = map[string]string{"berth.health-on-failure": o.healthOnFailure}
	default:
		return nil, fmt.Errorf("invalid argument %q for \"--health-on-failure\" flag: must be none, restart, stop or kill", o.healthOnFailure)
	}
	if flags.Changed("init") {
		init := o.init
		hostConfig.Init = &init
	}

	// docker 28 sends an empty endpoint for the default network and none
	// for a named one (the daemon creates it either way).
	endpoints := map[string]*network.EndpointSettings{}
	if networkMode == network.NetworkDefault {
		endpoints[network.NetworkDefault] = &network.EndpointSettings{}
	}
	// further --network flags: joined at the start (the daemon connects them)
	for _, n := range o.network[min(1, len(o.network)):] {
		if _, ok := endpoints[n]; !ok {
			endpoints[n] = &network.EndpointSettings{}
		}
	}
	if o.ip != "" || o.ip6 != "" || o.mac != "" || len(o.aliases.GetAll()) > 0 {
		es := &network.EndpointSettings{Aliases: o.aliases.GetAll()}
		ipam, err := endpointIPAM(o.ip, o.ip6)
		if err != nil {
			return nil, err
		}
		es.IPAMConfig = ipam
		if o.mac != "" {
			// As docker's CLI with API >= 1.44: the MAC rides on the
			// endpoint of the container's first network.
			mac, err := net.ParseMAC(o.mac)
			if err != nil {
				return nil, fmt.Errorf("invalid --mac-address %q: %w", o.mac, err)
			}
			es.MacAddress = network.HardwareAddr(mac)
		}
		endpoints[networkMode] = es
	}
	return &containerConfig{
		Config:           config,
		HostConfig:       hostConfig,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

func (o *containerOptions) healthConfig() (*container.HealthConfig, error) {
	have := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartIntvl != 0
	if o.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{
		"--health-interval": o.healthInterval, "--health-timeout": o.healthTimeout,
		"--health-start-period": o.healthStartPeriod, "--health-start-interval": o.healthStartIntvl,
	} {
		if d < 0 {
			return nil, fmt.Errorf("%s cannot be negative", name)
		}
	}
	if o.healthRetries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	var test []string
	if o.healthCmd != "" {
		test = []string{"CMD-SHELL", o.healthCmd}
	}
	return &container.HealthConfig{
		Test:          test,
		Interval:      o.healthInterval,
		Timeout:       o.healthTimeout,
		StartPeriod:   o.healthStartPeriod,
		StartInterval: o.healthStartIntvl,
		Retries:       o.healthRetries,
	}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readKVStrings reads files first, then appends the command-line values.
func readKVStrings(files, override []string, lookupEnv bool) ([]string, error) {
	var out []string
	for _, f := range files {
		lines, err := readKVFile(f, lookupEnv)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return append(out, override...), nil
}

func validateVolumeSpec(v string) error {
	if v == "" {
		return errors.New("invalid empty volume spec")
	}
	parts := strings.Split(v, ":")
	if len(parts) > 3 {
		return fmt.Errorf("invalid spec: %s: too many colons", v)
	}
	dst := parts[0]
	if len(parts) >= 2 {
		dst = parts[1]
		if parts[0] == "" {
			return fmt.Errorf("invalid spec: %s: empty section between colons", v)
		}
	}
	if !strings.HasPrefix(dst, "/") {
		return fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", dst)
	}
	return nil
}

// parsePublish maps -p and --expose to ExposedPorts and PortBindings.
func parsePublish(publish, expose []string) (network.PortSet, network.PortMap, error) {
	natExposed, natBindings, err := nat.ParsePortSpecs(publish)
	if err != nil {
		return nil, nil, err
	}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for p := range natExposed {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		exposed[port] = struct{}{}
	}
	for p, bs := range natBindings {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		out := make([]network.PortBinding, 0, len(bs))
		for _, b := range bs {
			pb := network.PortBinding{HostPort: b.HostPort}
			if b.HostIP != "" {
				ip, err := netip.ParseAddr(strings.Trim(b.HostIP, "[]"))
				if err != nil {
					return nil, nil, fmt.Errorf("invalid IP address: %s", b.HostIP)
				}
				pb.HostIP = ip
			}
			out = append(out, pb)
		}
		bindings[port] = out
	}
	for _, e := range expose {
		if strings.Contains(e, ":") {
			return nil, nil, fmt.Errorf("invalid port format for --expose: %s", e)
		}
		proto, rng := nat.SplitProtoPort(e)
		start, end, err := nat.ParsePortRange(rng)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for i := start; i <= end; i++ {
			port, err := network.ParsePort(strconv.FormatUint(i, 10) + "/" + proto)
			if err != nil {
				return nil, nil, err
			}
			exposed[port] = struct{}{}
		}
	}
	if len(exposed) == 0 {
		exposed = nil
	}
	return exposed, bindings, nil
}

// parseDevice reads src[:dst][:perms].
func parseDevice(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	dm := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isDevicePerms(parts[1]) {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		if !isDevicePerms(parts[2]) {
			return dm, fmt.Errorf("invalid device mode: %s", parts[2])
		}
		dm.PathInContainer, dm.CgroupPermissions = parts[1], parts[2]
	default:
		return dm, fmt.Errorf("invalid device specification: %s", d)
	}
	if !strings.HasPrefix(dm.PathInContainer, "/") {
		return dm, fmt.Errorf("bad format for path: %s", dm.PathInContainer)
	}
	return dm, nil
}

func isDevicePerms(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

// parseRestartPolicy reads name[:max-retries].
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return p, err
	}
	return p, nil
}

// parseSecurityOpts reads a seccomp profile file into the option (the
// daemon gets the JSON, not the path) and splits off systempaths=unconfined.
func parseSecurityOpts(opts []string) (secOpts, masked, readonly []string, err error) {
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok && opt != "no-new-privileges" {
			return nil, nil, nil, fmt.Errorf("invalid --security-opt: %q", opt)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			data, rerr := os.ReadFile(v)
			if rerr != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, rerr)
			}
			var profile json.RawMessage
			if jerr := json.Unmarshal(data, &profile); jerr != nil {
				return nil, nil, nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, jerr)
			}
			compact, _ := json.Marshal(profile)
			opt = "seccomp=" + string(compact)
		}
		secOpts = append(secOpts, opt)
	}
	return secOpts, masked, readonly, nil
}
