// Package daemon is berth's engine: it owns the image store and the
// containers, and implements the Engine API backend (internal/api.Backend).
// It holds no HTTP code.
//
// Data root (default /var/lib/berth):
//
//	metadata.db                 bbolt: images/refs/snapshots (internal/image), containers (here)
//	content/blobs/sha256/<hex>  image blobs (internal/content)
//	snapshots/<chainid>/        unpacked layers (internal/snapshot)
//	volumes/<name>/_data        volumes' content (internal/volume)
//	containers/<id>/
//	    rw/{upper,work}         the container's writable layer (internal/image)
//	    container-json.log[.N]  json-file logs, written by the keeper
//	    hostname hosts resolv.conf
//
// Exec root (default /run/berth):
//
//	keeper.sock keeper.pid keeper.log   the keeper process (internal/keeper)
//	runtime/<id>/state.json             OCI runtime state (internal/runtime)
//	bundles/<id>/{config.json,rootfs/}  OCI bundle; rootfs is the overlay mount
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"go.etcd.io/bbolt"

	"berth/internal/errdefs"
	"berth/internal/image"
	"berth/internal/keeper"
	berthnet "berth/internal/network"
	"berth/internal/runtime"
	"berth/internal/volume"
)

// Config is how the daemon is set up.
type Config struct {
	DataRoot string // /var/lib/berth
	ExecRoot string // /run/berth
	// Exe is the berth binary: the keeper and container inits run it.
	Exe    string
	Logger *slog.Logger
	// Version strings reported by /version.
	Version, APIVersion, MinAPIVersion string
	// BridgeName and BridgeSubnet configure the default bridge network
	// (network.DefaultBridgeName and network.DefaultSubnet when zero).
	BridgeName   string
	BridgeSubnet netip.Prefix
	// RegistryMirrors lists, by registry domain ("docker.io",
	// "127.0.0.1:5000"), the mirror URLs pulls try before the registry.
	RegistryMirrors map[string][]string
	// InsecureRegistries are registries (host:port) spoken to over HTTP.
	InsecureRegistries []string
	// RegistryCertsDirs are searched for <dir>/<host:port>/ registry TLS
	// certificates (ca.crt, client.cert/.key), instead of the defaults
	// /etc/berth/certs.d and /etc/docker/certs.d, when not empty.
	RegistryCertsDirs []string
	// BuildCacheMax bounds the build cache in bytes; least recently used
	// steps are pruned after a build that leaves it larger. Zero: 10% of
	// the data root's file system, at most 10 GB.
	BuildCacheMax int64
}

// Daemon is the engine.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	db      *bbolt.DB
	images  *image.Store
	volumes *volume.Store
	rt      *runtime.Runtime
	keeper  *keeper.Client
	events  *eventLog
	net     *berthnet.Manager // the default bridge network
	unets   userNets          // user-defined networks (usernet.go)

	mu         sync.Mutex
	containers map[string]*Container // by ID
	names      map[string]string     // "/name" -> ID

	execs sync.Map // exec ID -> *execConfig

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var containersBucket = []byte("containers")

// New opens the stores, connects to (or starts) the keeper, and reconciles
// containers with what the keeper still holds.
func New(cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{cfg.DataRoot, filepath.Join(cfg.DataRoot, "containers"), cfg.ExecRoot, filepath.Join(cfg.ExecRoot, "bundles")} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, err
		}
	}
	db, err := bbolt.Open(filepath.Join(cfg.DataRoot, "metadata.db"), 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open metadata db (is another daemon using %s?): %w", cfg.DataRoot, err)
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, db: db, containers: map[string]*Container{}, names: map[string]string{}, events: newEventLog()}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.images, err = image.Open(cfg.DataRoot, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if d.volumes, err = volume.Open(cfg.DataRoot, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	if d.net, err = berthnet.New(berthnet.Config{
		BridgeName: cfg.BridgeName, Subnet: cfg.BridgeSubnet,
		StateDir: filepath.Join(cfg.DataRoot, "network"), NetnsDir: filepath.Join(cfg.ExecRoot, "netns"),
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("default bridge network: %w", err)
	}
	if d.rt, err = runtime.New(filepath.Join(cfg.ExecRoot, "runtime")); err != nil {
		db.Close()
		return nil, err
	}
	if err := d.loadContainers(); err != nil {
		db.Close()
		return nil, err
	}
	sock := filepath.Join(cfg.ExecRoot, "keeper.sock")
	d.keeper, err = keeper.Dial(d.ctx, sock, func() error {
		os.Remove(sock)
		return keeper.StartProcess(cfg.Exe, []string{"--exec-root", cfg.ExecRoot}, filepath.Join(cfg.ExecRoot, "keeper.log"))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	evs, err := d.keeper.Events(d.ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	snap := <-evs
	d.reconcile(snap)
	d.wg.Add(1)
	go d.keeperEvents(evs)
	d.applyRestartPolicies()
	d.mu.Lock()
	var running []*Container
	for _, c := range d.containers {
		c.mu.Lock()
		if c.State.Running() {
			running = append(running, c)
		}
		c.mu.Unlock()
	}
	d.mu.Unlock()
	for _, c := range running {
		d.holdVolumes(c)
		d.startHealth(c, false)
		c.mu.Lock()
		ep := c.Endpoint
		c.mu.Unlock()
		if mgr := d.managerFor(c.HostConfig.NetworkMode); ep != nil && mgr != nil {
			if err := mgr.Restore(c.ID, ep.Ports); err != nil {
				d.log.Warn("hold published ports again", "id", c.ID, "err", err)
			}
			if !bridged(c.HostConfig.NetworkMode) {
				// the network's DNS server died with the old daemon
				if err := d.userNetAttached(c, string(c.HostConfig.NetworkMode), ep); err != nil {
					d.log.Warn("restart network DNS", "id", c.ID, "err", err)
				}
			}
			d.restoreJoined(c)
		}
	}
	return d, nil
}

// Close stops the daemon; running containers stay with the keeper.
func (d *Daemon) Close() error {
	d.cancel()
	d.wg.Wait()
	return d.db.Close()
}

func (d *Daemon) loadContainers() error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(containersBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			c := &Container{}
			if err := json.Unmarshal(v, c); err != nil {
				d.log.Warn("skipping corrupt container record", "id", string(k), "err", err)
				return nil
			}
			if c.State.Status == container.StateRemoving {
				// half-removed before a crash: finish it after start-up
				c.State.Status = container.StateDead
			}
			c.execs = map[string]*execConfig{}
			d.containers[c.ID] = c
			d.names[c.Name] = c.ID
			return nil
		})
	})
}

// save persists c; c.mu must be held by the caller.
func (d *Daemon) save(c *Container) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bbolt.Tx) error { return putRecord(tx, c.ID, b) })
}

// putRecord writes a container's JSON record b in tx.
func putRecord(tx *bbolt.Tx, id string, b []byte) error {
	bk, err := tx.CreateBucketIfNotExists(containersBucket)
	if err != nil {
		return err
	}
	return bk.Put([]byte(id), b)
}

// deleteRecordTx deletes a container's record in tx.
func deleteRecordTx(tx *bbolt.Tx, id string) error {
	if b := tx.Bucket(containersBucket); b != nil {
		return b.Delete([]byte(id))
	}
	return nil
}

// reconcile aligns persisted containers with the keeper's snapshot after a
// (re)start of the daemon.
func (d *Daemon) reconcile(snap keeper.Event) {
	held := map[string]keeper.State{}
	for _, s := range snap.Containers {
		held[s.ID] = s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.containers {
		c.mu.Lock()
		s, ok := held[c.ID]
		switch {
		case ok && s.Running:
			if c.State.Status != container.StatePaused {
				c.State.Status = container.StateRunning
			}
			c.State.Pid = s.Pid
		case ok:
			// exited while the daemon was away
			c.State.Status, c.State.ExitCode, c.State.Pid, c.State.FinishedAt = container.StateExited, s.ExitCode, 0, s.ExitedAt
			go d.cleanupAfterExit(c, true)
		case c.State.Running():
			// the keeper lost it (keeper restarted): it is gone
			c.State.Status, c.State.ExitCode, c.State.Pid, c.State.FinishedAt = container.StateExited, 255, 0, time.Now()
			c.State.Error = "container lost: the keeper process restarted"
			go d.cleanupAfterExit(c, false)
		}
		d.save(c)
		c.mu.Unlock()
	}
	for id := range held {
		if _, ok := d.containers[id]; !ok {
			d.log.Warn("keeper holds an unknown container, removing it", "id", id)
			go d.keeper.Delete(context.Background(), id, true)
		}
	}
}

func (d *Daemon) keeperEvents(evs <-chan keeper.Event) {
	defer d.wg.Done()
	for e := range evs {
		switch e.Type {
		case "exit":
			d.handleExit(e)
		case "exec-exit":
			d.handleExecExit(e)
		}
	}
	if d.ctx.Err() == nil {
		d.log.Error("lost the connection to the keeper")
	}
}

// newID returns a random 64-hex container ID whose 12-char prefix is unique.
func (d *Daemon) newID() string {
	for {
		var b [32]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if _, err := d.lookup(id[:12]); errdefs.IsNotFound(err) {
			return id
		}
	}
}

// Get resolves a container by name, full ID or unique ID prefix.
func (d *Daemon) Get(name string) (*Container, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookup(name)
}

func (d *Daemon) lookup(name string) (*Container, error) {
	if name == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("empty container name"))
	}
	if c, ok := d.containers[name]; ok {
		return c, nil
	}
	if id, ok := d.names["/"+strings.TrimPrefix(name, "/")]; ok {
		if c, ok := d.containers[id]; ok {
			return c, nil
		}
		// the name is reserved by a create still in progress
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	if c := d.lookupLink(name); c != nil {
		return c, nil
	}
	var found *Container
	for id, c := range d.containers {
		if strings.HasPrefix(id, name) {
			if found != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("multiple IDs found with provided prefix: %s", name))
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	return found, nil
}

// lookupLink resolves a legacy link name "<linker>/<alias>" (dockerd's
// "/app/db") to the link's target, whatever the linker is called now: the
// alias stored in its links may carry the name it had when it was created.
// d.mu held.
func (d *Daemon) lookupLink(name string) *Container {
	linker, alias, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok || linker == "" || alias == "" || strings.Contains(alias, "/") {
		return nil
	}
	l, err := d.lookup(linker)
	if err != nil {
		return nil
	}
	for _, link := range l.HostConfig.Links {
		target, as, ok := strings.Cut(link, ":")
		if !ok || as[strings.LastIndex(as, "/")+1:] != alias {
			continue
		}
		if c, err := d.lookup(target); err == nil {
			return c
		}
	}
	return nil
}

func (d *Daemon) containerDir(id string) string {
	return filepath.Join(d.cfg.DataRoot, "containers", id)
}
func (d *Daemon) bundleDir(id string) string { return filepath.Join(d.cfg.ExecRoot, "bundles", id) }
