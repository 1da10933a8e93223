// Package specgen turns a container's configuration (the Engine API's
// container.Config and container.HostConfig, plus the image's config) into
// the OCI runtime spec that the runtime executes, with Docker's semantics.
//
// Build is a pure translation apart from three host look-ups that Docker
// makes too: the container's /etc/passwd and /etc/group (user resolution),
// the kernel's capability and sysctl lists, and, for --device and
// --privileged, the host's device nodes. The one side effect is Docker's:
// a missing host directory named in a -v bind is created.
//
// The order of the steps matters and is the order Docker applies them in:
// process (args, env, user) → namespaces → capabilities → seccomp (it reads
// the capabilities) → mounts → resources and devices → sysctls.
package specgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// InitPathInContainer is where the berth binary is bind-mounted for --init.
// cmd/berth runs the init (package initproc) when invoked under this name.
const InitPathInContainer = "/sbin/berth-init"

// DefaultCgroupParent is the cgroup under which containers are placed when
// neither the Input nor the HostConfig names one.
const DefaultCgroupParent = "/berth"

// DefaultShmSize is the size of /dev/shm when HostConfig.ShmSize is 0 (64 MiB,
// as Docker).
const DefaultShmSize = 64 << 20

// DefaultPathEnv is the PATH given to a container whose image sets none.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Input is everything Build needs to know about one container.
type Input struct {
	// ID is the container's full ID; the default hostname is its first 12
	// characters and the cgroup is named after it.
	ID         string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Image is the image's config; nil for none (e.g. FROM scratch without
	// config). Config fields override it the way docker create merges them.
	Image *ocispec.ImageConfig
	// Rootfs is the host path of the mounted container root. /etc/passwd
	// and /etc/group are read from it, resolved inside the root.
	Rootfs string
	// Host files bind-mounted at /etc/hostname, /etc/hosts and
	// /etc/resolv.conf; an empty path skips that mount.
	HostnamePath, HostsPath, ResolvConfPath string
	// InitPath is the host path of the berth binary, mounted read-only at
	// InitPathInContainer when HostConfig.Init is set.
	InitPath string
	// CgroupParent defaults to DefaultCgroupParent; HostConfig.CgroupParent
	// wins over it.
	CgroupParent string
	// NamespacePaths are the namespaces of other containers that the PID,
	// IPC and network modes "container:<name>" join (e.g. /proc/<pid>/ns/pid),
	// resolved by the daemon, which knows the containers; and the network
	// namespace the daemon prepared for a bridged container (a bind mount).
	NamespacePaths map[specs.LinuxNamespaceType]string
	// ReadOnlyNonRecursive keeps read-only binds read-only on their top
	// mount only, as for containers created through API < 1.44 (dockerd's
	// DefaultReadOnlyNonRecursive); otherwise they get "rro".
	ReadOnlyNonRecursive bool
}

// builder carries the state of one Build call.
type builder struct {
	in   Input
	cfg  *container.Config
	hc   *container.HostConfig
	img  ocispec.ImageConfig
	spec *specs.Spec
	sec  securityOptions
}

// Build returns the OCI runtime spec for the container described by in.
// Errors caused by the user's configuration are errdefs.InvalidParameter;
// features berth does not provide yet (named volumes, container:<id>
// namespaces) are errdefs.NotImplemented.
func Build(in Input) (*specs.Spec, error) {
	if in.Config == nil {
		return nil, errdefs.InvalidParameter(errors.New("container config is missing"))
	}
	if in.ID == "" {
		return nil, errdefs.InvalidParameter(errors.New("container ID is missing"))
	}
	if in.Rootfs == "" {
		// Without it /etc/passwd would be read from the host.
		return nil, errors.New("container root filesystem path is missing")
	}
	b := &builder{
		in:  in,
		cfg: in.Config,
		hc:  in.HostConfig,
		spec: &specs.Spec{
			Version: specs.Version,
			Process: &specs.Process{},
			Root:    &specs.Root{Path: in.Rootfs},
			Linux: &specs.Linux{
				Sysctl: map[string]string{},
			},
		},
	}
	if b.hc == nil {
		b.hc = &container.HostConfig{}
	}
	if in.Image != nil {
		b.img = *in.Image
	}
	sec, err := parseSecurityOpts(b.hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	b.sec = sec

	steps := []func() error{
		b.hostname,
		b.process,
		b.namespaces,
		b.capabilities,
		b.seccomp,
		b.mounts,
		b.maskedPaths,
		b.resources,
		b.devices,
		b.sysctls,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	b.spec.Root.Readonly = b.hc.ReadonlyRootfs
	b.spec.Linux.CgroupsPath = b.cgroupsPath()
	if len(b.hc.Annotations) > 0 {
		b.spec.Annotations = make(map[string]string, len(b.hc.Annotations))
		for k, v := range b.hc.Annotations {
			b.spec.Annotations[k] = v
		}
	}
	return b.spec, nil
}

// hostname sets the UTS names: Config.Hostname, else the host's name with
// --network host (Docker keeps a private UTS namespace there but copies the
// host's name), else the short ID.
func (b *builder) hostname() error {
	name := b.cfg.Hostname
	if name == "" {
		if b.hc.NetworkMode.IsHost() {
			h, err := os.Hostname()
			if err != nil {
				return fmt.Errorf("read host name for --network host: %w", err)
			}
			name = h
		} else {
			name = b.in.ID
			if len(name) > 12 {
				name = name[:12]
			}
		}
	}
	b.spec.Hostname = name
	if b.cfg.Domainname != "" {
		b.spec.Domainname = b.cfg.Domainname
		// Runtimes that predate the domainname field (runc 1.1) honour this
		// sysctl, which has the same effect as setdomainname(2); Docker sets it.
		b.spec.Linux.Sysctl["kernel.domainname"] = b.cfg.Domainname
	}
	return nil
}

func (b *builder) cgroupsPath() string {
	parent := b.hc.CgroupParent
	if parent == "" {
		parent = b.in.CgroupParent
	}
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	return filepath.Join(parent, b.in.ID)
}

// namespaces applies the network, IPC, PID, UTS and cgroup modes.
func (b *builder) namespaces() error {
	hc := b.hc
	var ns []specs.LinuxNamespace
	ns = append(ns, specs.LinuxNamespace{Type: specs.MountNamespace})

	switch nm := hc.NetworkMode; {
	case nm.IsHost():
		// The host's network namespace: no entry.
	case nm.IsContainer():
		p := b.in.NamespacePaths[specs.NetworkNamespace]
		if p == "" {
			return errdefs.InvalidParameter(fmt.Errorf("network mode %q: the namespace path of the container is missing", nm))
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p})
	default:
		// none, default, bridge and named networks all get a new namespace;
		// the daemon wires interfaces into it. A bridged container joins
		// the namespace the daemon prepared (NamespacePaths), none gets a
		// fresh one.
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: b.in.NamespacePaths[specs.NetworkNamespace]})
	}

	if !hc.UTSMode.Valid() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid UTS mode: %q", hc.UTSMode))
	}
	if hc.UTSMode.IsHost() {
		b.spec.Hostname = ""
	} else {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}

	for _, m := range []struct {
		what string
		typ  specs.LinuxNamespaceType
		mode sharingMode
	}{{"PID", specs.PIDNamespace, hc.PidMode}, {"IPC", specs.IPCNamespace, hc.IpcMode}} {
		n, err := b.sharedNamespace(m.what, m.typ, m.mode)
		if err != nil {
			return err
		}
		if n != nil {
			ns = append(ns, *n)
		}
	}

	if !hc.CgroupnsMode.Valid() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid cgroup namespace mode: %q", hc.CgroupnsMode))
	}
	mode := hc.CgroupnsMode
	if mode.IsEmpty() {
		// Docker's daemon default: private on cgroup v2, host on v1 (and on a
		// v1 host a privileged container always shares the host's).
		mode = container.CgroupnsModeHost
		if cgroupV2() {
			mode = container.CgroupnsModePrivate
		}
	}
	if mode.IsPrivate() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	if !hc.UsernsMode.Valid() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid user namespace mode: %q", hc.UsernsMode))
	}
	b.spec.Linux.Namespaces = ns
	return nil
}

// sharingMode is a PID or IPC mode: "host", "container:<name|id>", or a
// private namespace.
type sharingMode interface {
	Valid() bool
	IsContainer() bool
	IsHost() bool
}

// sharedNamespace is the namespace of type typ that mode asks for: the
// container's (joined by its path), none for the host's, else a new one.
func (b *builder) sharedNamespace(what string, typ specs.LinuxNamespaceType, mode sharingMode) (*specs.LinuxNamespace, error) {
	if !mode.Valid() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid %s mode: %q", what, mode))
	}
	switch {
	case mode.IsContainer():
		p := b.in.NamespacePaths[typ]
		if p == "" {
			return nil, errdefs.InvalidParameter(fmt.Errorf("%s mode %q: the namespace path of the container is missing", what, mode))
		}
		return &specs.LinuxNamespace{Type: typ, Path: p}, nil
	case mode.IsHost():
		return nil, nil
	}
	return &specs.LinuxNamespace{Type: typ}, nil
}

// hasNamespace reports whether the spec creates or joins a namespace of type t.
func (b *builder) hasNamespace(t specs.LinuxNamespaceType) bool {
	for _, n := range b.spec.Linux.Namespaces {
		if n.Type == t {
			return true
		}
	}
	return false
}

// cgroupV2 reports whether /sys/fs/cgroup is the unified hierarchy. It is a
// variable so tests can pin the answer.
var cgroupV2 = func() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}
