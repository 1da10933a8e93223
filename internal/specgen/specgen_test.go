package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// pinHost fixes the host facts Build reads, so expectations do not depend on
// the machine running the tests.
func pinHost(t *testing.T, v2 bool) {
	t.Helper()
	oldV2, oldSwap, oldSysctl, oldCap := cgroupV2, swapAccounting, sysctlExists, capAvailable
	cgroupV2 = func() bool { return v2 }
	swapAccounting = func() bool { return true }
	sysctlExists = func(string) bool { return true }
	capAvailable = func(n int) bool { return n <= 40 }
	t.Cleanup(func() { cgroupV2, swapAccounting, sysctlExists, capAvailable = oldV2, oldSwap, oldSysctl, oldCap })
}

func baseInput(t *testing.T) Input {
	t.Helper()
	return Input{
		ID:             testID,
		Config:         &container.Config{},
		HostConfig:     &container.HostConfig{},
		Image:          &ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
		Rootfs:         busyboxRoot(t),
		HostnamePath:   "/run/berth/c/hostname",
		HostsPath:      "/run/berth/c/hosts",
		ResolvConfPath: "/run/berth/c/resolv.conf",
		InitPath:       "/usr/local/bin/berth",
	}
}

func mustBuild(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return s
}

func findMount(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func nsTypes(s *specs.Spec) []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		out = append(out, n.Type)
	}
	return out
}

func TestBuildDefaults(t *testing.T) {
	pinHost(t, false)
	s := mustBuild(t, baseInput(t))

	p := s.Process
	if !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/" || p.Terminal {
		t.Errorf("process args %q cwd %q terminal %v", p.Args, p.Cwd, p.Terminal)
	}
	wantEnv := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab", "HOME=/root"}
	if !slices.Equal(p.Env, wantEnv) {
		t.Errorf("env %q, want %q", p.Env, wantEnv)
	}
	if p.User.UID != 0 || p.User.GID != 0 || !slices.Equal(p.User.AdditionalGids, []uint32{0, 10}) {
		t.Errorf("user %+v", p.User)
	}
	if s.Hostname != "0123456789ab" || s.Root.Path != baseInput(t).Rootfs || s.Root.Readonly {
		t.Errorf("hostname %q root %+v", s.Hostname, s.Root)
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 0 || p.NoNewPrivileges || len(p.Rlimits) != 0 {
		t.Errorf("oom %v nnp %v rlimits %v", p.OOMScoreAdj, p.NoNewPrivileges, p.Rlimits)
	}
	if !slices.Equal(p.Capabilities.Bounding, DefaultCapabilities()) || !slices.Equal(p.Capabilities.Effective, DefaultCapabilities()) ||
		!slices.Equal(p.Capabilities.Permitted, DefaultCapabilities()) || len(p.Capabilities.Inheritable) != 0 || len(p.Capabilities.Ambient) != 0 {
		t.Errorf("capabilities %+v", p.Capabilities)
	}
	if len(p.Capabilities.Bounding) != 14 {
		t.Errorf("default capability count %d, want 14", len(p.Capabilities.Bounding))
	}

	wantMounts := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
	if got := destinations(s); !slices.Equal(got, wantMounts) {
		t.Errorf("mounts %q, want %q", got, wantMounts)
	}
	if m := findMount(s, "/dev/shm"); !slices.Equal(m.Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}) {
		t.Errorf("/dev/shm options %q", m.Options)
	}
	if m := findMount(s, "/etc/hosts"); m.Type != "bind" || m.Source != "/run/berth/c/hosts" || !slices.Equal(m.Options, []string{"rbind", "rprivate"}) {
		t.Errorf("/etc/hosts mount %+v", m)
	}
	if m := findMount(s, "/sys"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys not read-only: %q", m.Options)
	}

	wantNS := []specs.LinuxNamespaceType{specs.MountNamespace, specs.NetworkNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.IPCNamespace}
	if got := nsTypes(s); !slices.Equal(got, wantNS) {
		t.Errorf("namespaces %v, want %v (cgroup v1: host cgroupns)", got, wantNS)
	}
	if s.Linux.CgroupsPath != "/berth/"+testID {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.MaskedPaths, "/sys/firmware") ||
		!slices.Contains(s.Linux.MaskedPaths, "/sys/devices/virtual/powercap") || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Fatalf("default seccomp profile missing: %+v", s.Linux.Seccomp)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("sysctls %v", s.Linux.Sysctl)
	}
	r := s.Linux.Resources
	if r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
		t.Errorf("unexpected resource limits %+v", r)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow || r.Devices[0].Access != "rwm" {
		t.Fatalf("device rules must start with deny-all: %+v", r.Devices)
	}
	allowed := map[[2]int64]bool{}
	for _, d := range r.Devices[1:] {
		if d.Allow && d.Type == "c" && d.Access == "rwm" {
			allowed[[2]int64{*d.Major, *d.Minor}] = true
		}
	}
	for _, dev := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}, {10, 200}} {
		if !allowed[dev] {
			t.Errorf("device c %d:%d not allowed", dev[0], dev[1])
		}
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("unexpected extra devices %+v", s.Linux.Devices)
	}
}

func TestBuildCgroupNamespace(t *testing.T) {
	for _, tc := range []struct {
		v2   bool
		mode container.CgroupnsMode
		want bool
	}{
		{v2: false, want: false},
		{v2: true, want: true},
		{v2: false, mode: "private", want: true},
		{v2: true, mode: "host", want: false},
	} {
		pinHost(t, tc.v2)
		in := baseInput(t)
		in.HostConfig.CgroupnsMode = tc.mode
		s := mustBuild(t, in)
		if got := slices.Contains(nsTypes(s), specs.CgroupNamespace); got != tc.want {
			t.Errorf("v2=%v mode=%q: cgroup namespace %v, want %v", tc.v2, tc.mode, got, tc.want)
		}
	}
}

func TestBuildConfigOverridesImage(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.Image = &ocispec.ImageConfig{
		Entrypoint: []string{"/docker-entrypoint.sh"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/opt/bin:/bin", "MODE=image", "KEEP=yes"},
		WorkingDir: "/srv",
		User:       "daemon",
	}
	in.Config = &container.Config{
		Hostname:   "web",
		Domainname: "example.org",
		Cmd:        []string{"debug", "--verbose"},
		Env:        []string{"MODE=config"},
		WorkingDir: "/tmp/../var/www",
		User:       "www-data",
		Tty:        true,
	}
	in.HostConfig.ConsoleSize = [2]uint{40, 120}
	s := mustBuild(t, in)
	p := s.Process
	if !slices.Equal(p.Args, []string{"/docker-entrypoint.sh", "debug", "--verbose"}) {
		t.Errorf("args %q", p.Args)
	}
	wantEnv := []string{"PATH=/opt/bin:/bin", "HOSTNAME=web", "TERM=xterm", "MODE=config", "KEEP=yes", "HOME=/var/www"}
	if !slices.Equal(p.Env, wantEnv) {
		t.Errorf("env %q, want %q", p.Env, wantEnv)
	}
	if p.Cwd != "/var/www" || p.User.UID != 33 || p.User.GID != 33 || !p.Terminal {
		t.Errorf("cwd %q user %+v terminal %v", p.Cwd, p.User, p.Terminal)
	}
	if p.ConsoleSize == nil || p.ConsoleSize.Height != 40 || p.ConsoleSize.Width != 120 {
		t.Errorf("console size %+v", p.ConsoleSize)
	}
	if s.Hostname != "web" || s.Domainname != "example.org" || s.Linux.Sysctl["kernel.domainname"] != "example.org" {
		t.Errorf("hostname %q domainname %q sysctl %v", s.Hostname, s.Domainname, s.Linux.Sysctl)
	}
}

func TestBuildUserErrors(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.Config.User = "foo"
	_, err := Build(in)
	if !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "unable to find user foo: no matching entries in passwd file") {
		t.Fatalf("unknown user: %v", err)
	}
	in = baseInput(t)
	in.Config.WorkingDir = "relative/dir"
	if _, err := Build(in); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("relative working dir: %v", err)
	}
	in = baseInput(t)
	in.Image = nil
	if _, err := Build(in); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "no command specified") {
		t.Fatalf("no command: %v", err)
	}
}

func TestBuildCapabilities(t *testing.T) {
	pinHost(t, false)
	tests := []struct {
		name       string
		add, drop  []string
		want       []string
		wantLen    int
		wantErrSub string
	}{
		{
			name: "add and drop, any case, with or without CAP_",
			add:  []string{"net_admin", "CAP_SYS_PTRACE", "chown"},
			drop: []string{"Chown", "cap_mknod"},
			want: []string{"CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_CHOWN"},
		},
		{name: "drop all keeps only adds", add: []string{"kill"}, drop: []string{"ALL"}, want: []string{"CAP_KILL"}},
		{name: "drop all", drop: []string{"all"}, want: []string{}},
		{name: "add all minus one", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, wantLen: 40},
		{name: "unknown", add: []string{"FLY"}, wantErrSub: `unknown capability: "CAP_FLY"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.CapAdd, in.HostConfig.CapDrop = tc.add, tc.drop
			s, err := Build(in)
			if tc.wantErrSub != "" {
				if !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), tc.wantErrSub) {
					t.Fatalf("error %v, want %q", err, tc.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := s.Process.Capabilities.Bounding
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Fatalf("caps %q\nwant %q", got, tc.want)
			}
			if tc.wantLen != 0 && (len(got) != tc.wantLen || slices.Contains(got, "CAP_SYS_ADMIN")) {
				t.Fatalf("caps %q: want %d without CAP_SYS_ADMIN", got, tc.wantLen)
			}
		})
	}
}

// The default seccomp profile depends on the capabilities: CAP_SYS_ADMIN
// unlocks mount(2), CAP_SYS_PTRACE unlocks process_vm_readv(2), ...
func TestBuildSeccompFollowsCapabilities(t *testing.T) {
	pinHost(t, false)
	allows := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && slices.Contains(sc.Names, name) && len(sc.Args) == 0 {
				return true
			}
		}
		return false
	}
	plain := mustBuild(t, baseInput(t))
	in := baseInput(t)
	in.HostConfig.CapAdd = []string{"SYS_ADMIN"}
	admin := mustBuild(t, in)
	if allows(plain, "mount") || !allows(admin, "mount") {
		t.Fatalf("mount allowed: default %v, with CAP_SYS_ADMIN %v", allows(plain, "mount"), allows(admin, "mount"))
	}
	if !allows(plain, "read") {
		t.Fatal("default profile does not allow read(2)")
	}
}

func TestBuildSecurityOpts(t *testing.T) {
	pinHost(t, false)
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    []string
		check   func(t *testing.T, s *specs.Spec)
		wantErr bool
	}{
		{name: "no-new-privileges", opts: []string{"no-new-privileges"}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Process.NoNewPrivileges {
				t.Error("NoNewPrivileges not set")
			}
		}},
		{name: "no-new-privileges=false and ignored labels", opts: []string{"no-new-privileges=false", "label=disable", "apparmor=unconfined", "label:type:x"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.NoNewPrivileges {
				t.Error("NoNewPrivileges set")
			}
		}},
		{name: "seccomp unconfined", opts: []string{"seccomp=unconfined"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil {
				t.Error("seccomp still set")
			}
		}},
		{name: "seccomp profile contents", opts: []string{"seccomp=" + profile}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow || len(s.Linux.Seccomp.Syscalls) != 1 || s.Linux.Seccomp.Syscalls[0].Names[0] != "chmod" {
				t.Errorf("seccomp %+v", s.Linux.Seccomp)
			}
		}},
		{name: "seccomp profile path", opts: []string{"seccomp=" + path}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow {
				t.Errorf("seccomp %+v", s.Linux.Seccomp)
			}
		}},
		{name: "systempaths unconfined", opts: []string{"systempaths=unconfined"}, check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
				t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
		}},
		{name: "writable cgroups", opts: []string{"writable-cgroups=true"}, check: func(t *testing.T, s *specs.Spec) {
			if m := findMount(s, "/sys/fs/cgroup"); slices.Contains(m.Options, "ro") {
				t.Errorf("cgroup mount still ro: %q", m.Options)
			}
		}},
		{name: "unknown option", opts: []string{"bogus=1"}, wantErr: true},
		{name: "malformed", opts: []string{"bogus"}, wantErr: true},
		{name: "missing profile", opts: []string{"seccomp=/no/such/profile.json"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.SecurityOpt = tc.opts
			s, err := Build(in)
			if tc.wantErr {
				if !errdefs.IsInvalidParameter(err) {
					t.Fatalf("error %v, want InvalidParameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestBuildMaskedPathsFromHostConfig(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.MaskedPaths = []string{"/proc/one"}
	in.HostConfig.ReadonlyPaths = []string{}
	s := mustBuild(t, in)
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/one"}) || len(s.Linux.ReadonlyPaths) != 0 {
		t.Fatalf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestBuildPrivileged(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.Privileged = true
	in.HostConfig.CapDrop = []string{"ALL"} // ignored when privileged, as Docker
	s := mustBuild(t, in)
	if got := s.Process.Capabilities.Bounding; len(got) != 41 || got[0] != "CAP_CHOWN" || got[40] != "CAP_CHECKPOINT_RESTORE" {
		t.Errorf("privileged caps (%d) %q", len(got), got)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged: seccomp %v masked %q readonly %q", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if m := findMount(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("/sys ro when privileged: %q", m.Options)
	}
	if m := findMount(s, "/sys/fs/cgroup"); slices.Contains(m.Options, "ro") {
		t.Errorf("cgroup ro when privileged: %q", m.Options)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Type != "" {
		t.Errorf("privileged device rules %+v", d)
	}
	var null bool
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			null = true
		}
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("host device %s must not be passed", d.Path)
		}
	}
	if !null {
		t.Errorf("host /dev/null missing from privileged devices (%d devices)", len(s.Linux.Devices))
	}
}

func TestBuildHostNamespaces(t *testing.T) {
	pinHost(t, false)
	host, _ := os.Hostname()
	in := baseInput(t)
	in.HostConfig.NetworkMode = "host"
	in.HostConfig.PidMode = "host"
	in.HostConfig.IpcMode = "host"
	init := true
	in.HostConfig.Init = &init
	s := mustBuild(t, in)
	if got, want := nsTypes(s), []specs.LinuxNamespaceType{specs.MountNamespace, specs.UTSNamespace}; !slices.Equal(got, want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}
	if s.Hostname != host || !slices.Contains(s.Process.Env, "HOSTNAME="+host) {
		t.Errorf("hostname %q env %q, want the host's %q", s.Hostname, s.Process.Env, host)
	}
	if _, ok := s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"]; ok {
		t.Error("network sysctls set in the host network namespace")
	}
	if s.Process.Args[0] == InitPathInContainer || findMount(s, InitPathInContainer) != nil {
		t.Error("--init must not apply with --pid host")
	}
	if m := findMount(s, "/dev/shm"); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("--ipc host /dev/shm: %+v", m)
	}

	in = baseInput(t)
	in.HostConfig.UTSMode = "host"
	s = mustBuild(t, in)
	if slices.Contains(nsTypes(s), specs.UTSNamespace) || s.Hostname != "" {
		t.Errorf("--uts host: namespaces %v hostname %q", nsTypes(s), s.Hostname)
	}

	for _, mode := range []string{"none", "default", "bridge", "mynet"} {
		in = baseInput(t)
		in.HostConfig.NetworkMode = container.NetworkMode(mode)
		if s := mustBuild(t, in); !slices.Contains(nsTypes(s), specs.NetworkNamespace) {
			t.Errorf("network %q: no network namespace", mode)
		}
	}
	// --pid/--ipc/--network container:<x> join the namespace path the
	// daemon resolved.
	for _, tc := range []struct {
		hc  container.HostConfig
		typ specs.LinuxNamespaceType
	}{
		{container.HostConfig{PidMode: "container:abc"}, specs.PIDNamespace},
		{container.HostConfig{IpcMode: "container:abc"}, specs.IPCNamespace},
		{container.HostConfig{NetworkMode: "container:abc"}, specs.NetworkNamespace},
	} {
		in = baseInput(t)
		*in.HostConfig = tc.hc
		if _, err := Build(in); errdefs.ClassOf(err) != errdefs.ClassInvalidParameter {
			t.Errorf("%+v without a namespace path: error %v, want InvalidParameter", tc.hc, err)
		}
		in.NamespacePaths = map[specs.LinuxNamespaceType]string{tc.typ: "/proc/42/ns/x"}
		s := mustBuild(t, in)
		joined := false
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == tc.typ {
				joined = ns.Path == "/proc/42/ns/x"
			}
		}
		if !joined {
			t.Errorf("%+v: namespaces %+v, want %s joined at /proc/42/ns/x", tc.hc, s.Linux.Namespaces, tc.typ)
		}
	}
}

func TestBuildIpcNone(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.IpcMode = "none"
	in.HostConfig.ShmSize = 1 << 20
	if s := mustBuild(t, in); findMount(s, "/dev/shm") != nil {
		t.Error("/dev/shm mounted with --ipc none")
	}
	in.HostConfig.IpcMode = "private"
	s := mustBuild(t, in)
	if m := findMount(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("--shm-size 1m: %+v", m)
	}
}

func TestBuildInit(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.Config.Cmd = []string{"sleep", "10"}
	init := true
	in.HostConfig.Init = &init
	s := mustBuild(t, in)
	if want := []string{"/sbin/berth-init", "--", "sleep", "10"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args %q, want %q", s.Process.Args, want)
	}
	m := findMount(s, InitPathInContainer)
	if m == nil || m.Source != "/usr/local/bin/berth" || m.Type != "bind" || !slices.Equal(m.Options, []string{"bind", "ro"}) {
		t.Errorf("init mount %+v", m)
	}
	in.InitPath = ""
	if _, err := Build(in); err == nil {
		t.Error("--init without an init path succeeded")
	}
}

func TestBuildReadonlyRootfs(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.ReadonlyRootfs = true
	in.HostConfig.Tmpfs = map[string]string{"/run": ""}
	s := mustBuild(t, in)
	if !s.Root.Readonly {
		t.Fatal("root not read-only")
	}
	for _, m := range s.Mounts {
		ro := slices.Contains(m.Options, "ro")
		wantRO := true
		switch m.Destination {
		case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/run":
			wantRO = false
		}
		if ro != wantRO {
			t.Errorf("%s: ro=%v, want %v (%q)", m.Destination, ro, wantRO, m.Options)
		}
	}
}

func TestBuildUlimitsAndOOM(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "nproc", Soft: 100, Hard: 100}}
	in.HostConfig.OomScoreAdj = 500
	s := mustBuild(t, in)
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_NPROC", Soft: 100, Hard: 100}}
	if !slices.Equal(s.Process.Rlimits, want) || *s.Process.OOMScoreAdj != 500 {
		t.Errorf("rlimits %+v oom %d", s.Process.Rlimits, *s.Process.OOMScoreAdj)
	}
	for _, bad := range [][]*container.Ulimit{{{Name: "bogus", Soft: 1, Hard: 1}}, {{Name: "nofile", Soft: 10, Hard: 5}}} {
		in.HostConfig.Ulimits = bad
		if _, err := Build(in); !errdefs.IsInvalidParameter(err) {
			t.Errorf("ulimit %+v: error %v", bad[0], err)
		}
	}
	in.HostConfig.Ulimits = nil
	in.HostConfig.OomScoreAdj = 1001
	if _, err := Build(in); !errdefs.IsInvalidParameter(err) {
		t.Errorf("oom score 1001: %v", err)
	}
}

func TestBuildSysctls(t *testing.T) {
	pinHost(t, false)
	in := baseInput(t)
	in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "net.ipv4.ip_unprivileged_port_start": "1024"}
	s := mustBuild(t, in)
	for k, v := range in.HostConfig.Sysctls {
		if s.Linux.Sysctl[k] != v {
			t.Errorf("sysctl %s = %q, want %q", k, s.Linux.Sysctl[k], v)
		}
	}
	for _, tc := range []struct {
		key string
		hc  container.HostConfig
	}{
		{"kernel.panic", container.HostConfig{}},
		{"vm.swappiness", container.HostConfig{}},
		{"net.core.somaxconn", container.HostConfig{NetworkMode: "host"}},
		{"kernel.sem", container.HostConfig{IpcMode: "host"}},
	} {
		in = baseInput(t)
		*in.HostConfig = tc.hc
		in.HostConfig.Sysctls = map[string]string{tc.key: "1"}
		if _, err := Build(in); !errdefs.IsInvalidParameter(err) {
			t.Errorf("sysctl %s with %+v: error %v, want InvalidParameter", tc.key, tc.hc, err)
		}
	}
}

// A capability missing from the daemon's own bounding set can be neither
// added nor handed to a privileged container (Docker's rule too).
func TestCapabilitiesOutsideBoundingSet(t *testing.T) {
	pinHost(t, false)
	capAvailable = func(n int) bool { return n <= 40 && n != 24 } // no CAP_SYS_RESOURCE
	in := baseInput(t)
	in.HostConfig.CapAdd = []string{"SYS_RESOURCE"}
	if _, err := Build(in); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("cap-add SYS_RESOURCE: %v", err)
	}
	in = baseInput(t)
	in.HostConfig.Privileged = true
	s := mustBuild(t, in)
	if got := s.Process.Capabilities.Bounding; len(got) != 40 || slices.Contains(got, "CAP_SYS_RESOURCE") {
		t.Fatalf("privileged caps %q", got)
	}
}
