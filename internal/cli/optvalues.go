package cli

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// The pflag.Value types below reproduce docker's flag types so that help
// shows the same type names ("list", "bytes", "decimal", ...) and bad values
// are refused while parsing flags, with docker's messages.

// listOpts is a repeatable string flag with an optional validator.
type listOpts struct {
	values    []string
	validator func(string) (string, error)
}

func newListOpts(validator func(string) (string, error)) *listOpts {
	return &listOpts{validator: validator}
}

func (l *listOpts) String() string {
	if len(l.values) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", l.values)
}

func (l *listOpts) Set(v string) error {
	if l.validator != nil {
		nv, err := l.validator(v)
		if err != nil {
			return err
		}
		v = nv
	}
	l.values = append(l.values, v)
	return nil
}

func (l *listOpts) Type() string { return "list" }

// GetAll returns the values, nil when none.
func (l *listOpts) GetAll() []string { return l.values }

// GetAllOrEmpty returns the values, never nil.
func (l *listOpts) GetAllOrEmpty() []string {
	if l.values == nil {
		return []string{}
	}
	return l.values
}

// mapOpts is a repeatable key=value flag ("map" in help).
type mapOpts struct {
	values    map[string]string
	validator func(string) (string, error)
}

func (m *mapOpts) String() string { return fmt.Sprintf("%v", m.values) }
func (m *mapOpts) Type() string   { return "map" }

func (m *mapOpts) Set(v string) error {
	if m.validator != nil {
		nv, err := m.validator(v)
		if err != nil {
			return err
		}
		v = nv
	}
	if m.values == nil {
		m.values = map[string]string{}
	}
	k, val, _ := strings.Cut(v, "=")
	m.values[k] = val
	return nil
}

// memBytes is a size like "64m" ("bytes" in help).
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memBytes(n)
	return err
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is like memBytes but accepts -1 for unlimited.
type memSwapBytes int64

func (m *memSwapBytes) String() string { return (*memBytes)(m).String() }
func (m *memSwapBytes) Type() string   { return "bytes" }

func (m *memSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	return (*memBytes)(m).Set(v)
}

// nanoCPUs is a decimal number of CPUs stored in units of 1e-9 CPU.
type nanoCPUs int64

func (n *nanoCPUs) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}

func (n *nanoCPUs) Set(v string) error {
	cpus, err := parseCPUs(v)
	*n = nanoCPUs(cpus)
	return err
}

func (n *nanoCPUs) Type() string { return "decimal" }

func parseCPUs(v string) (int64, error) {
	cpu, ok := new(big.Rat).SetString(v)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", v)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	return nano.Num().Int64(), nil
}

// ulimitOpts collects --ulimit name=soft[:hard].
type ulimitOpts struct {
	values []*units.Ulimit
}

func (u *ulimitOpts) String() string {
	s := make([]string, len(u.values))
	for i, v := range u.values {
		s[i] = v.String()
	}
	return fmt.Sprintf("%v", s)
}

func (u *ulimitOpts) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	for i, old := range u.values {
		if old.Name == l.Name {
			u.values[i] = l
			return nil
		}
	}
	u.values = append(u.values, l)
	return nil
}

func (u *ulimitOpts) Type() string { return "ulimit" }

// mountOpts collects --mount type=...,source=...,target=... specs.
type mountOpts struct {
	values []mount.Mount
}

func (m *mountOpts) String() string { return "" }
func (m *mountOpts) Type() string   { return "mount" }

func (m *mountOpts) Set(v string) error {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	mnt := mount.Mount{Type: mount.TypeVolume}
	// Options are collected first because type= may come after them.
	var volOpts mount.VolumeOptions
	var bindOpts mount.BindOptions
	var tmpfsOpts mount.TmpfsOptions
	haveVol, haveBind, haveTmpfs := false, false, false
	for _, field := range fields {
		key, val, hasVal := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !hasVal {
			switch key {
			case "readonly", "ro":
				mnt.ReadOnly = true
				continue
			case "volume-nocopy":
				volOpts.NoCopy, haveVol = true, true
				continue
			case "bind-nonrecursive":
				bindOpts.NonRecursive, haveBind = true, true
				continue
			default:
				return fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			mnt.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			mnt.Source = val
		case "target", "dst", "destination":
			mnt.Target = val
		case "readonly", "ro":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			mnt.ReadOnly = b
		case "consistency":
			mnt.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOpts.Propagation, haveBind = mount.Propagation(strings.ToLower(val)), true
		case "bind-create-mountpoint":
			bindOpts.CreateMountpoint, haveBind = val == "true" || val == "1", true
		case "volume-nocopy":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("invalid value for volume-nocopy: %s", val)
			}
			volOpts.NoCopy, haveVol = b, true
		case "volume-subpath":
			volOpts.Subpath, haveVol = val, true
		case "volume-label":
			k, lv, _ := strings.Cut(val, "=")
			if volOpts.Labels == nil {
				volOpts.Labels = map[string]string{}
			}
			volOpts.Labels[k], haveVol = lv, true
		case "volume-driver":
			if volOpts.DriverConfig == nil {
				volOpts.DriverConfig = &mount.Driver{}
			}
			volOpts.DriverConfig.Name, haveVol = val, true
		case "volume-opt":
			if volOpts.DriverConfig == nil {
				volOpts.DriverConfig = &mount.Driver{}
			}
			if volOpts.DriverConfig.Options == nil {
				volOpts.DriverConfig.Options = map[string]string{}
			}
			k, ov, _ := strings.Cut(val, "=")
			volOpts.DriverConfig.Options[k], haveVol = ov, true
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts.SizeBytes, haveTmpfs = n, true
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts.Mode, haveTmpfs = os.FileMode(n), true
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if mnt.Target == "" {
		return errors.New("target is required")
	}
	if haveVol && mnt.Type != mount.TypeVolume {
		return fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", mnt.Type)
	}
	if haveBind && mnt.Type != mount.TypeBind {
		return fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", mnt.Type)
	}
	if haveTmpfs && mnt.Type != mount.TypeTmpfs {
		return fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", mnt.Type)
	}
	if haveVol {
		mnt.VolumeOptions = &volOpts
	}
	if haveBind {
		mnt.BindOptions = &bindOpts
	}
	if haveTmpfs {
		mnt.TmpfsOptions = &tmpfsOpts
	}
	m.values = append(m.values, mnt)
	return nil
}

// Validators, with docker's messages.

func validateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", fmt.Errorf("invalid environment variable: %s", v)
	}
	if hasValue {
		return v, nil
	}
	if ev, ok := os.LookupEnv(k); ok {
		return k + "=" + ev, nil
	}
	return v, nil
}

func validateLabel(v string) (string, error) {
	if k, _, _ := strings.Cut(v, "="); k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	return v, nil
}

func validateIP(v string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return a.String(), nil
}

func validateExtraHost(v string) (string, error) {
	// host:ip or host=ip; ip may be IPv6 (with colons) or "host-gateway".
	name, ip, ok := strings.Cut(v, "=")
	if !ok {
		name, ip, ok = strings.Cut(v, ":")
	}
	if !ok || name == "" {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return name + ":" + ip, nil
}

func validateSysctl(v string) (string, error) {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", v)
	}
	return v, nil
}

func validateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	switch s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return "", errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// readKVFile reads an --env-file or --label-file: KEY=VALUE lines, blank
// lines and # comments skipped. A bare KEY takes its value from the
// environment when lookupEnv is set (and is dropped if unset there).
func readKVFile(path string, lookupEnv bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimLeft(sc.Text(), " \t")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if hasValue {
			lines = append(lines, line)
			continue
		}
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if lookupEnv {
			if v, ok := os.LookupEnv(k); ok {
				lines = append(lines, k+"="+v)
			}
			continue
		}
		lines = append(lines, line)
	}
	return lines, sc.Err()
}
