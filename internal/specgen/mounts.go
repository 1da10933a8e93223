package specgen

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"berth/internal/errdefs"

	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts returns Docker's standard filesystems, before any user
// mount overrides them.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// mounts assembles spec.Mounts: the defaults that no user mount replaces,
// the init binary, then the user's mounts (network files, binds, --mount,
// --tmpfs) sorted so that a parent is mounted before its children.
func (b *builder) mounts() error {
	user, err := b.userMounts()
	if err != nil {
		return err
	}
	byDest := make(map[string]bool, len(user))
	for _, m := range user {
		if byDest[m.Destination] {
			return errdefs.InvalidParameter(fmt.Errorf("duplicate mount point: %s", m.Destination))
		}
		byDest[m.Destination] = true
	}
	sort.SliceStable(user, func(i, j int) bool { return mountDepth(user[i].Destination) < mountDepth(user[j].Destination) })

	shmSize := b.hc.ShmSize
	if shmSize == 0 {
		shmSize = DefaultShmSize
	}
	if shmSize < 0 {
		return errdefs.InvalidParameter(fmt.Errorf("SHM size can not be less than 0"))
	}
	var ms []specs.Mount
	for _, m := range defaultMounts() {
		if byDest[m.Destination] {
			continue
		}
		if byDest["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if m.Destination == "/dev/shm" {
			if b.hc.IpcMode.IsNone() {
				continue
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(shmSize, 10))
		}
		ms = append(ms, m)
	}
	if b.hc.Init != nil && *b.hc.Init && !b.hc.PidMode.IsHost() {
		ms = append(ms, specs.Mount{Destination: InitPathInContainer, Type: "bind", Source: b.in.InitPath, Options: []string{"bind", "ro"}})
	}

	if b.hc.ReadonlyRootfs {
		// Docker makes the standard mounts read-only too, except those a
		// process needs to write: /proc, /dev and its tmpfs children.
		for i := range ms {
			switch ms[i].Destination {
			case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
				continue
			}
			if !slices.Contains(ms[i].Options, "ro") {
				ms[i].Options = append(ms[i].Options, "ro")
			}
		}
	}
	writableCgroups := b.hc.Privileged
	if b.sec.writableCgroups != nil {
		writableCgroups = *b.sec.writableCgroups
	}
	for i := range ms {
		if (b.hc.Privileged && ms[i].Destination == "/sys") || (writableCgroups && ms[i].Type == "cgroup") {
			ms[i].Options = slices.DeleteFunc(ms[i].Options, func(o string) bool { return o == "ro" })
		}
	}
	b.spec.Mounts = append(ms, user...)
	return nil
}

// readOnlyRecursion makes a read-only bind read-only recursively (runc's
// "rro": its submounts too), Docker's default from API 1.44, unless
// BindOptions.ReadOnlyNonRecursive asks otherwise or the container was
// created through an older API (Input.ReadOnlyNonRecursive). The option
// conflicts are dockerd's, with its messages. bo is nil for -v binds.
func (b *builder) readOnlyRecursion(m *specs.Mount, bo *mount.BindOptions) error {
	if bo == nil {
		bo = &mount.BindOptions{}
	}
	readonly := slices.Contains(m.Options, "ro")
	switch {
	case !readonly && bo.ReadOnlyNonRecursive:
		return errdefs.InvalidParameter(errors.New("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"))
	case !readonly && bo.ReadOnlyForceRecursive:
		return errdefs.InvalidParameter(errors.New("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"))
	case bo.ReadOnlyNonRecursive && bo.ReadOnlyForceRecursive:
		return errdefs.InvalidParameter(errors.New("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"))
	}
	if readonly && !bo.ReadOnlyNonRecursive && (bo.ReadOnlyForceRecursive || !b.in.ReadOnlyNonRecursive) {
		m.Options = append(m.Options, "rro")
	}
	return nil
}

// mountDepth counts the path elements of a destination: Docker's sort key.
func mountDepth(dest string) int {
	return len(strings.Split(path.Clean(dest), "/"))
}

// userMounts collects every mount the container asked for, plus the
// hostname/hosts/resolv.conf files unless the user mounts their own.
func (b *builder) userMounts() ([]specs.Mount, error) {
	var ms []specs.Mount
	for _, bind := range b.hc.Binds {
		m, err := parseBind(bind)
		if err != nil {
			return nil, err
		}
		if err := b.readOnlyRecursion(&m, nil); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	for _, mt := range b.hc.Mounts {
		m, err := convertMount(mt)
		if err != nil {
			return nil, err
		}
		if mt.Type == mount.TypeBind {
			if err := b.readOnlyRecursion(&m, mt.BindOptions); err != nil {
				return nil, err
			}
		}
		ms = append(ms, m)
	}
	for _, dest := range sortedKeys(b.hc.Tmpfs) {
		m, err := tmpfsMount(dest, b.hc.Tmpfs[dest])
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if b.hc.IpcMode.IsHost() {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	}
	taken := make(map[string]bool, len(ms))
	for _, m := range ms {
		taken[m.Destination] = true
	}
	for _, f := range []struct{ src, dest string }{
		{b.in.HostnamePath, "/etc/hostname"},
		{b.in.HostsPath, "/etc/hosts"},
		{b.in.ResolvConfPath, "/etc/resolv.conf"},
	} {
		if f.src == "" || taken[f.dest] {
			continue
		}
		opts := []string{"rbind"}
		if b.hc.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		opts = append(opts, "rprivate")
		ms = append(ms, specs.Mount{Destination: f.dest, Type: "bind", Source: f.src, Options: opts})
	}
	for _, m := range ms {
		if p := propagationOf(m.Options); p != "" {
			b.adjustRootPropagation(p)
		}
	}
	return ms, nil
}

// adjustRootPropagation makes the root mount's propagation compatible with a
// shared or slave bind, as Docker does.
func (b *builder) adjustRootPropagation(p string) {
	cur := b.spec.Linux.RootfsPropagation
	switch p {
	case "shared", "rshared":
		if cur != "shared" && cur != "rshared" {
			b.spec.Linux.RootfsPropagation = "shared"
		}
	case "slave", "rslave":
		if cur == "" || cur == "private" || cur == "rprivate" {
			b.spec.Linux.RootfsPropagation = "rslave"
		}
	}
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

func propagationOf(opts []string) string {
	for _, o := range opts {
		if slices.Contains(propagations, o) {
			return o
		}
	}
	return ""
}

// volumeNameRE is what Docker's local driver accepts as a volume name.
var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// errVolume is the answer for volume mounts until berth has volumes.
func errVolume(name, spec string) error {
	if name == "" {
		return errdefs.NotImplemented(fmt.Errorf("anonymous volume %q: volumes are not supported yet; bind an absolute host path instead", spec))
	}
	return errdefs.NotImplemented(fmt.Errorf("named volume %q in %q: volumes are not supported yet; bind an absolute host path instead", name, spec))
}

// parseBind parses one -v value: "src:dst[:mode,...]" with a host path
// source. A missing source directory is created, as docker run -v does.
func parseBind(raw string) (specs.Mount, error) {
	parts := strings.Split(raw, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		return specs.Mount{}, errVolume("", raw)
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s'", raw))
	}
	if src == "" || dst == "" {
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s'", raw))
	}
	opts, err := parseBindMode(mode)
	if err != nil {
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mode: %s (in %q): %w", mode, raw, err))
	}
	dst, err = checkDestination(dst, raw)
	if err != nil {
		return specs.Mount{}, err
	}
	if !path.IsAbs(src) {
		if !volumeNameRE.MatchString(src) {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", src))
		}
		return specs.Mount{}, errVolume(src, raw)
	}
	src = path.Clean(src)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("create bind source %s for %q: %w", src, raw, err)
		}
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}, nil
}

// parseBindMode validates a -v mode list (at most one each of rw/ro,
// z/Z, propagation, nocopy and consistency) and returns the mount options.
func parseBindMode(mode string) ([]string, error) {
	readonly := false
	propagation := ""
	counts := map[string]int{}
	if mode != "" {
		for _, o := range strings.Split(mode, ",") {
			var kind string
			switch {
			case o == "rw" || o == "ro":
				kind = "rw"
				readonly = o == "ro"
			case o == "z" || o == "Z":
				kind = "label" // SELinux relabel: nothing to do without SELinux
			case slices.Contains(propagations, o):
				kind = "propagation"
				propagation = o
			case o == "nocopy":
				kind = "copy"
			case o == "consistent" || o == "cached" || o == "delegated" || o == "default":
				kind = "consistency"
			default:
				return nil, fmt.Errorf("unknown option %q", o)
			}
			counts[kind]++
			if counts[kind] > 1 {
				return nil, fmt.Errorf("more than one %s option", kind)
			}
		}
	}
	return bindOptions(false, readonly, propagation), nil
}

func bindOptions(nonRecursive, readonly bool, propagation string) []string {
	opts := []string{"rbind"}
	if nonRecursive {
		opts[0] = "bind"
	}
	if readonly {
		opts = append(opts, "ro")
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	return append(opts, propagation)
}

func checkDestination(dst, spec string) (string, error) {
	if !path.IsAbs(dst) {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid mount config: mount path %q must be absolute (in %q)", dst, spec))
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid specification: destination can't be '/' (in %q)", spec))
	}
	return dst, nil
}

// convertMount turns one --mount (HostConfig.Mounts entry) into a spec mount.
func convertMount(mt mount.Mount) (specs.Mount, error) {
	desc := fmt.Sprintf("type=%s,source=%s,target=%s", mt.Type, mt.Source, mt.Target)
	dst, err := checkDestination(mt.Target, desc)
	if err != nil {
		return specs.Mount{}, err
	}
	switch mt.Type {
	case mount.TypeBind:
		if mt.TmpfsOptions != nil || mt.VolumeOptions != nil {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": only bind options are allowed (%s)", desc))
		}
		if !path.IsAbs(mt.Source) {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", mt.Source))
		}
		src := path.Clean(mt.Source)
		bo := mt.BindOptions
		if bo == nil {
			bo = &mount.BindOptions{}
		}
		if _, err := os.Stat(src); err != nil {
			if !errors.Is(err, os.ErrNotExist) || !bo.CreateMountpoint {
				return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s", src))
			}
			if err := os.MkdirAll(src, 0o755); err != nil {
				return specs.Mount{}, fmt.Errorf("create bind source %s: %w", src, err)
			}
		}
		if bo.Propagation != "" && !slices.Contains(propagations, string(bo.Propagation)) {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid propagation mode: %s", bo.Propagation))
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: bindOptions(bo.NonRecursive, mt.ReadOnly, string(bo.Propagation))}, nil
	case mount.TypeTmpfs:
		if mt.Source != "" {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"tmpfs\": source must not be specified"))
		}
		if mt.BindOptions != nil || mt.VolumeOptions != nil {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"tmpfs\": only tmpfs options are allowed (%s)", desc))
		}
		return tmpfsMount(dst, tmpfsData(mt.TmpfsOptions, mt.ReadOnly))
	case mount.TypeVolume:
		return specs.Mount{}, errVolume(mt.Source, desc)
	case "":
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config: mount type unknown (%s)", desc))
	default:
		return specs.Mount{}, errdefs.NotImplemented(fmt.Errorf("mount type %q is not supported (%s)", mt.Type, desc))
	}
}

// tmpfsData renders --mount type=tmpfs options as a mount data string, with
// the size in the largest unit that divides it (Docker's rendering).
func tmpfsData(o *mount.TmpfsOptions, readonly bool) string {
	var opts []string
	if readonly {
		opts = append(opts, "ro")
	}
	if o == nil {
		return strings.Join(opts, ",")
	}
	if o.Mode != 0 {
		opts = append(opts, fmt.Sprintf("mode=%o", o.Mode))
	}
	if o.SizeBytes != 0 {
		size, suffix := o.SizeBytes, ""
		for _, u := range []struct {
			suffix string
			div    int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%u.div == 0 {
				size, suffix = size/u.div, u.suffix
				break
			}
		}
		opts = append(opts, fmt.Sprintf("size=%d%s", size, suffix))
	}
	for _, kv := range o.Options {
		opts = append(opts, strings.Join(kv, "="))
	}
	return strings.Join(opts, ",")
}

// tmpfsMount builds a tmpfs mount with Docker's defaults (noexec, nosuid,
// nodev, rprivate) overridden by the user's options.
func tmpfsMount(dest, data string) (specs.Mount, error) {
	dst, err := checkDestination(dest, dest+":"+data)
	if err != nil {
		return specs.Mount{}, err
	}
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	merged, err := mergeTmpfsOptions(opts)
	if err != nil {
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("tmpfs %s: %w", dest, err))
	}
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: merged}, nil
}

// tmpfsFlagGroups maps each flag option to the group of options it competes
// with: of two options in one group, the later wins.
var tmpfsFlagGroups = map[string]string{
	"ro": "rw", "rw": "rw",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"exec": "exec", "noexec": "exec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"mand":    "mand", "nomand": "mand",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"private": "propagation", "rprivate": "propagation",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
	"unbindable": "propagation", "runbindable": "propagation",
}

var tmpfsDataKeys = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge", "inode64", "noswap"}

// mergeTmpfsOptions removes overridden options, keeping the last of each
// flag group and of each data key, in their original order.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := strings.TrimSpace(opts[i])
		if o == "" || o == "defaults" {
			continue
		}
		key := ""
		if g, ok := tmpfsFlagGroups[o]; ok {
			key = "flag:" + g
		} else {
			k, _, _ := strings.Cut(o, "=")
			if !slices.Contains(tmpfsDataKeys, k) {
				return nil, fmt.Errorf("invalid tmpfs option %q", o)
			}
			key = "data:" + k
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, o)
	}
	slices.Reverse(out)
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
