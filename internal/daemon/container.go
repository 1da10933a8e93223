package daemon

import (
	"net/netip"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"

	"berth/internal/keeper"
	berthnet "berth/internal/network"
)

// Container is the daemon's record of one container. The exported fields are
// persisted (JSON in bbolt); the rest lives in memory only.
type Container struct {
	ID           string
	Name         string // with the leading "/"
	Created      time.Time
	Path         string
	Args         []string
	Config       *container.Config
	HostConfig   *container.HostConfig
	Image        string // as the user typed it
	ImageID      digest.Digest
	State        State
	RestartCount int
	LogPath      string
	BundleDir    string
	// ManualStop is set by stop/kill through the API: restart policies
	// (unless-stopped, always at daemon start) honour it.
	ManualStop bool
	// Endpoint is the container's attachment to the default bridge while
	// it runs (nil otherwise).
	Endpoint *berthnet.Endpoint `json:",omitempty"`
	// NetworkAliases are the --network-alias names the embedded DNS of a
	// user-defined network answers for the container (see usernet.go).
	NetworkAliases []string `json:",omitempty"`
	// NetworkIP is the --ip address on a user-defined network (zero: any).
	NetworkIP netip.Addr `json:",omitzero"`
	// NetworkIP6 is the --ip6 address on a user-defined --ipv6 network.
	NetworkIP6 netip.Addr `json:",omitzero"`
	// NetworkMAC is the --mac-address on the first network ("": derived
	// from the IP address, see netconnect.go).
	NetworkMAC string `json:",omitempty"`
	// Networks are the user-defined networks joined with `network connect`
	// besides HostConfig.NetworkMode, in joining order (see netconnect.go).
	Networks []*NetAttachment `json:",omitempty"`
	// Volumes are the volumes mounted into the container (see
	// resolveVolumes).
	Volumes []VolumeMount `json:",omitempty"`
	// ReadOnlyNonRecursive records a create through API < 1.44: its
	// read-only binds stay read-only on their top mount only, as they were
	// then (dockerd records the same per mount point).
	ReadOnlyNonRecursive bool `json:",omitempty"`

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at every state change
	exits    int           // incremented at every exit (for wait next-exit)
	removed  bool
	removing bool // a removal has claimed the container (see remove)
	pending  []*pendingAttach
	execs    map[string]*execConfig
	starting bool
	// apiRestart is set while ContainerRestart stops and starts the
	// container: that exit must not auto-remove an --rm container.
	apiRestart bool
	// cleaning is set from an exit until its runtime state and rootfs are
	// released (see waitCleanup).
	cleaning bool
	// healthStop ends the healthcheck monitor (nil when none runs).
	healthStop func()
}

// State mirrors the Engine API's container state.
type State struct {
	Status     container.ContainerState // created, running, paused, restarting, exited, dead, removing
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *container.Health `json:",omitempty"`
}

// Running reports whether the container has a live process.
func (s State) Running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused || s.Status == container.StateRestarting
}

// notify wakes everybody waiting on a state change; c.mu must be held.
func (c *Container) notify() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

// wait returns a channel closed at the next state change; c.mu must be held.
func (c *Container) waitChan() <-chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// pendingAttach is an attach request that arrived before the container
// started: start hands it its keeper stream before the process execs.
type pendingAttach struct {
	stdin, stdout, stderr bool
	ready                 chan *keeper.Stream
}
