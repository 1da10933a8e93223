// Package keeper is the long-lived process that holds berth's running
// containers: it is their parent (and child subreaper), owns their stdio,
// writes their json-file logs, reaps them and reports exit codes. The daemon
// talks to it over a unix socket, so containers keep running — with logs,
// attach and exec still working — while the daemon stops, crashes or is
// upgraded.
//
// Lifecycle, as the daemon drives it:
//
//  1. The daemon dials <exec-root>/keeper.sock; if nobody answers it starts
//     `berth keeper` (setsid, detached) and dials again.
//  2. GET /events: the first message is a snapshot of every container the
//     keeper holds (running or exited and not yet deleted); then one message
//     per exit. A restarted daemon reconciles its store from the snapshot.
//  3. POST /create starts the container's init through the runtime (it waits
//     before exec); POST /attach (hijacked) subscribes to its output;
//     POST /start lets it exec. POST /exec runs a process inside.
//  4. On exit the keeper drains the output, closes attach streams, and sends
//     an "exit" event. POST /delete removes the runtime state and the record.
//
// When it holds no containers and no daemon is connected for a while, the
// keeper exits by itself.
package keeper

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CreateRequest is the body of POST /create.
type CreateRequest struct {
	ID          string
	Bundle      string
	Tty         bool
	OpenStdin   bool
	StdinOnce   bool
	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int
}

// CreateResponse answers POST /create.
type CreateResponse struct {
	Pid int
}

// ExecRequest is the body of POST /exec.
type ExecRequest struct {
	ID      string // container
	ExecID  string
	Process *specs.Process
	Stdin   bool
	Detach  bool
	Height  uint
	Width   uint
}

// State is what the keeper knows of one container.
type State struct {
	ID       string
	Pid      int
	Running  bool
	ExitCode int
	ExitedAt time.Time
}

// Event is one message of GET /events.
type Event struct {
	Type       string  // "snapshot", "exit", "exec-exit"
	Containers []State `json:",omitempty"`
	ID         string  `json:",omitempty"`
	ExecID     string  `json:",omitempty"`
	ExitCode   int
	ExitedAt   time.Time `json:",omitempty"`
	OOMKilled  bool      `json:",omitempty"`
}

// Header of a hijacked stream response carrying the started process's pid.
const pidHeader = "X-Berth-Pid"
