// Package runtime is berth's OCI runtime: it runs any valid runtime-spec
// bundle, as runc does, and is used both in-process (by the keeper) and by
// the runc-compatible CLI (internal/runtimecli).
//
// Lifecycle (OCI runtime spec):
//
//	Create  → init process started, namespaces, cgroups, rootfs and
//	          everything else set up; it blocks on <root>/<id>/exec.fifo.
//	          Status "created". The init is a child of the caller.
//	Start   → reads exec.fifo: the init execs the user process; Start
//	          returns once it has (the init holds the fifo open until its
//	          execve). "running".
//	Kill    → signals the init (or every process in the cgroup).
//	(exit)  → "stopped" once the init is dead (the caller reaps it).
//	Delete  → removes cgroups, the mounts of a container that had no
//	          mount namespace of its own, and the state; runs poststop
//	          hooks.
//
// State layout under root (e.g. /run/berth/runtime):
//
//	<id>/state.json   the container's state (written temp + rename)
//	<id>/exec.fifo    exists while the container is "created"
//
// The child side of Create and Exec (the re-exec'd binary) is
// internal/nsinit.
package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// Runtime manages containers whose state lives under one root directory.
type Runtime struct {
	root string
	exe  *selfExe
}

// New opens (creating if needed) the state directory root.
func New(root string) (*Runtime, error) {
	if root == "" {
		return nil, errdefs.InvalidParameter(errors.New("runtime root is empty"))
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return nil, fmt.Errorf("create runtime root %s: %w", abs, err)
	}
	return &Runtime{root: abs, exe: &selfExe{}}, nil
}

// Root is the state directory.
func (r *Runtime) Root() string { return r.root }

// IO is the stdio of a container process.
type IO struct {
	// Stdin, Stdout, Stderr are used when the process has no terminal;
	// nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ConsoleSocket: with a terminal, the pty master is sent over this unix
	// socket (runc's protocol: one SCM_RIGHTS message).
	ConsoleSocket string
	// OnConsole: with a terminal, receive the pty master in-process instead.
	OnConsole func(master *os.File) error
}

// state is what <root>/<id>/state.json holds.
type state struct {
	specs.State
	// InitStart is the init's start time (clock ticks since boot, from
	// /proc/<pid>/stat) to tell it from a later process with the same pid.
	InitStart   uint64      `json:"initStart"`
	Created     time.Time   `json:"created"`
	Rootfs      string      `json:"rootfs"`
	CgroupsPath string      `json:"cgroupsPath"`
	Paused      bool        `json:"paused,omitempty"`
	Spec        *specs.Spec `json:"spec"`
	// KeepMounts (no mount namespace): ids of the mounts at or under the
	// rootfs before create (an engine's overlay, say), which delete must
	// leave; the others are the container's.
	KeepMounts []int `json:"keepMounts,omitempty"`
}

// validID reports whether id matches runc's `^[\w+\-.]+$` (a loop, not a
// package-level regexp: that would be compiled at the start of every berth
// process, the container's init among them).
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+-.", c) >= 0) {
			return false
		}
	}
	return id != ""
}

func checkID(id string) error {
	if !validID(id) || id == "." || id == ".." {
		return errdefs.InvalidParameter(fmt.Errorf("invalid container id %q", id))
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root, id) }

func (r *Runtime) load(id string) (*state, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errdefs.NotFound(fmt.Errorf("container %q does not exist", id))
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse state of %s: %w", id, err)
	}
	st.Status = r.status(&st)
	return &st, nil
}

// save writes state.json atomically. No fsync: the state lives on tmpfs
// (/run) and is meaningless after a reboot anyway.
func (r *Runtime) save(st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := r.dir(st.ID)
	tmp := filepath.Join(dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "state.json")); err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	return nil
}

// status derives the state from the world, as runc does: a dead init means
// stopped; exec.fifo still there means created.
func (r *Runtime) status(st *state) specs.ContainerState {
	if st.Pid <= 0 || !processAlive(st.Pid, st.InitStart) {
		return specs.StateStopped
	}
	if st.Paused {
		return specs.ContainerState("paused")
	}
	if _, err := os.Lstat(filepath.Join(r.dir(st.ID), "exec.fifo")); err == nil {
		return specs.StateCreated
	}
	return specs.StateRunning
}

// procStat returns a process's state letter and start time.
func procStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

func processAlive(pid int, start uint64) bool {
	st, s, err := procStat(pid)
	if err != nil || st == 'Z' || st == 'X' {
		return false
	}
	return start == 0 || s == start
}

// State returns the OCI state of the container.
func (r *Runtime) State(id string) (*specs.State, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	out := st.State
	if out.Status == specs.StateStopped {
		out.Pid = 0
	}
	return &out, nil
}

// List returns the state of every container under the root.
func (r *Runtime) List() ([]specs.State, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.root, err)
	}
	var out []specs.State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := r.State(e.Name())
		if err != nil {
			continue // half-made or being deleted
		}
		out = append(out, *s)
	}
	return out, nil
}

// Created reports when the container was created (for `list`).
func (r *Runtime) Created(id string) (time.Time, error) {
	st, err := r.load(id)
	if err != nil {
		return time.Time{}, err
	}
	return st.Created, nil
}

// Spec returns the spec the container was created with.
func (r *Runtime) Spec(id string) (*specs.Spec, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return st.Spec, nil
}

func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// wrapErrno keeps a classified error classified.
var _ = unix.ENOENT
