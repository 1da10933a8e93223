// Package volume is berth's "local" volume driver: named directories under
// the data root that outlive containers, optionally backed by a tmpfs or a
// bind of a host path (docker's local driver options).
//
// Layout (under the data root):
//
//	volumes/<name>/_data   the volume's content (or the mount point of its
//	                       tmpfs/bind backing while a container uses it)
//	metadata.db            bucket "volumes": name -> JSON Volume record
//
// Lifecycle: Create (idempotent for an existing name with the same or no
// options) -> Mount(name, ref) by every container start that uses it ->
// Unmount(name, ref) at its exit -> Remove once no container refers to it.
// A tmpfs- or bind-backed volume is mounted on the first Mount and
// unmounted when the last reference goes (ref-counted in memory).
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// DriverLocal is the only driver berth has.
const DriverLocal = "local"

// LabelAnonymous marks volumes created for a container without a name
// (docker 23+ uses it to prune only those by default).
const LabelAnonymous = "com.docker.volume.anonymous"

var bucket = []byte("volumes")

// nameRE is what docker's local driver accepts as a volume name.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume's persisted record.
type Volume struct {
	Name      string
	Driver    string
	CreatedAt time.Time
	Labels    map[string]string
	Options   map[string]string
}

// Anonymous reports whether the volume was created without a name.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[LabelAnonymous]
	return ok
}

// Ephemeral reports whether the volume's content lives only while it is
// mounted: a tmpfs-backed volume.
func (v *Volume) Ephemeral() bool { return v.Options["type"] == "tmpfs" }

// Store keeps the volumes of one data root.
type Store struct {
	root string // <data-root>/volumes
	db   *bbolt.DB

	mu   sync.Mutex
	vols map[string]*Volume
	refs map[string]map[string]bool // name -> refs holding it mounted
}

// Open loads the volumes recorded in db; root is the daemon's data root.
func Open(dataRoot string, db *bbolt.DB) (*Store, error) {
	s := &Store{root: filepath.Join(dataRoot, "volumes"), db: db, vols: map[string]*Volume{}, refs: map[string]map[string]bool{}}
	if err := os.MkdirAll(s.root, 0o701); err != nil {
		return nil, fmt.Errorf("create volumes directory: %w", err)
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			vol := &Volume{}
			if err := json.Unmarshal(v, vol); err != nil {
				return fmt.Errorf("volume record %s: %w", k, err)
			}
			s.vols[vol.Name] = vol
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load volumes: %w", err)
	}
	return s, nil
}

// Mountpoint is where the volume's content is on the host.
func (s *Store) Mountpoint(name string) string {
	return filepath.Join(s.root, name, "_data")
}

// NewName returns a random 64-hex name for an anonymous volume.
func NewName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidateOptions checks local driver options the way docker does.
func ValidateOptions(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o", "size":
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid option key: %q", k))
		}
	}
	if len(opts) > 0 && opts["device"] == "" && opts["type"] != "tmpfs" {
		return errdefs.InvalidParameter(errors.New(`missing required option: "device"`))
	}
	if opts["type"] == "" && opts["device"] != "" {
		return errdefs.InvalidParameter(errors.New(`missing required option: "type"`))
	}
	return nil
}

// Create creates the volume, or returns the existing one of that name. An
// empty name creates an anonymous volume with a generated name.
func (s *Store) Create(name, driver string, opts, labels map[string]string) (*Volume, error) {
	if driver == "" {
		driver = DriverLocal
	}
	if driver != DriverLocal {
		return nil, errdefs.NotFound(fmt.Errorf("create %s: error looking up volume plugin %s: plugin %q not found", name, driver, driver))
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if name == "" {
		name = NewName()
		labels[LabelAnonymous] = ""
	}
	if !nameRE.MatchString(name) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name))
	}
	if err := ValidateOptions(opts); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		return v, nil
	}
	if opts == nil {
		opts = map[string]string{}
	}
	v := &Volume{Name: name, Driver: driver, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Options: opts}
	if err := os.MkdirAll(s.Mountpoint(name), 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(name), b)
	}); err != nil {
		os.RemoveAll(filepath.Join(s.root, name))
		return nil, fmt.Errorf("record volume %s: %w", name, err)
	}
	s.vols[name] = v
	return v, nil
}

// Get returns the volume named name.
func (s *Store) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	return v, nil
}

// List returns every volume, sorted by name.
func (s *Store) List() []*Volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Volume, 0, len(s.vols))
	for _, v := range s.vols {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Remove deletes the volume and its content. The caller checks that no
// container refers to it; a volume still mounted is a conflict.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	if len(s.refs[name]) > 0 {
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use", name))
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		if bk := tx.Bucket(bucket); bk != nil {
			return bk.Delete([]byte(name))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("remove volume %s record: %w", name, err)
	}
	delete(s.vols, name)
	if err := os.RemoveAll(filepath.Join(s.root, name)); err != nil {
		return fmt.Errorf("remove volume %s content: %w", name, err)
	}
	return nil
}

// Backed reports whether the volume's content is a mount (tmpfs or bind)
// made by Mount, rather than the plain directory at Mountpoint.
func (v *Volume) Backed() bool { return v.Options["type"] != "" || v.Options["device"] != "" }

// Mount makes the volume's content available for ref (a container ID) and
// returns its host path. Backed volumes are mounted on the first reference.
func (s *Store) Mount(name, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	mp := s.Mountpoint(name)
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if len(s.refs[name]) == 0 && v.Backed() && !isMountpoint(mp) {
		// (already mounted: a daemon restart found a container using it)
		if err := mountBacking(v.Options, mp); err != nil {
			return "", fmt.Errorf("mount volume %s: %w", name, err)
		}
	}
	if s.refs[name] == nil {
		s.refs[name] = map[string]bool{}
	}
	s.refs[name][ref] = true
	return mp, nil
}

// Unmount drops ref's hold; the last one unmounts a backed volume.
func (s *Store) Unmount(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.refs[name]
	if !held[ref] {
		return nil
	}
	delete(held, ref)
	if len(held) > 0 {
		return nil
	}
	delete(s.refs, name)
	if v, ok := s.vols[name]; ok && v.Backed() {
		if err := unix.Unmount(s.Mountpoint(name), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount volume %s: %w", name, err)
		}
	}
	return nil
}

// Held reports whether ref holds the volume mounted.
func (s *Store) Held(name, ref string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs[name][ref]
}

// InUse reports whether a container holds the volume mounted.
func (s *Store) InUse(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refs[name]) > 0
}

// mountBacking mounts a volume's tmpfs or bind device at mp, following
// docker's local driver: type, device and o as for mount(8).
func mountBacking(opts map[string]string, mp string) error {
	typ, dev, o := opts["type"], opts["device"], opts["o"]
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		switch opt {
		case "":
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "ro":
			flags |= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		default:
			data = append(data, opt)
		}
	}
	if sz := opts["size"]; sz != "" {
		data = append(data, "size="+sz)
	}
	if typ == "none" {
		typ = ""
	}
	if dev == "" {
		dev = typ
	}
	if flags&unix.MS_BIND != 0 {
		if _, err := os.Stat(dev); err != nil {
			return fmt.Errorf("bind device %s: %w", dev, err)
		}
	}
	if err := unix.Mount(dev, mp, typ, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s (type %q, options %q) at %s: %w", dev, typ, o, mp, err)
	}
	return nil
}

// Size is the disk usage of the volume's content in bytes (-1 for a
// missing volume). A backed volume not mounted now has none.
func (s *Store) Size(name string) int64 {
	s.mu.Lock()
	_, ok := s.vols[name]
	s.mu.Unlock()
	if !ok {
		return -1
	}
	var total int64
	seen := map[uint64]bool{}
	filepath.WalkDir(s.Mountpoint(name), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if st.Nlink > 1 && !de.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		if !de.IsDir() {
			total += st.Size
		}
		return nil
	})
	return total
}

// Empty reports whether dir has no entries (a missing dir counts as empty).
func Empty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) == 0 {
		return true, nil
	}
	return false, err
}

// isMountpoint reports whether p is the mount point of a mount, from
// /proc/self/mountinfo (field 5; octal escapes as the kernel writes them).
func isMountpoint(p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	esc := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(p)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == esc {
			return true
		}
	}
	return false
}
