package nsinit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what the parent sends the child before it does anything.
type Config struct {
	Mode   string      `json:"mode"`
	ID     string      `json:"id"`
	Bundle string      `json:"bundle,omitempty"`
	Rootfs string      `json:"rootfs,omitempty"` // init: absolute host path of the root
	Spec   *specs.Spec `json:"spec"`             // init: the whole spec; exec: the container's spec
	// Process to run: init uses Spec.Process; exec its own.
	Process *specs.Process `json:"process"`
	// Namespaces to setns into, by fd number in the child.
	Namespaces []JoinNS `json:"namespaces,omitempty"`
	// UnshareCgroupNS: create a cgroup namespace after the parent moved us
	// into the container's cgroups (so that becomes its root).
	UnshareCgroupNS bool `json:"unshareCgroupNS,omitempty"`
	// Unshare (init, with a user namespace joined by path): the clone
	// flags of the namespaces to create, which the child unshares itself
	// after the userns helper joined the user namespace, so that they are
	// owned by it. With CLONE_NEWPID (or CLONE_NEWTIME, which also only
	// applies to children) the child forks the init and reports MsgForked.
	Unshare int `json:"unshare,omitempty"`
	// NewUTS: the UTS namespace is the container's own, new or joined by
	// path (hostname allowed).
	NewUTS bool `json:"newUTS,omitempty"`
	// HostMountNS (init): no mount namespace in the spec, so the rootfs is
	// set up in the caller's and entered with chroot, not pivot_root.
	HostMountNS bool `json:"hostMountNS,omitempty"`
	// RootFD (exec, >0): the container's root (an O_PATH fd of
	// /proc/<init>/root) to chroot into, for a container that has no mount
	// namespace to join.
	RootFD int `json:"rootFD,omitempty"`
	// UserNS: the process runs in a user namespace (mknod impossible, etc.).
	UserNS bool `json:"userNS,omitempty"`
	// PassFDs is how many fds from 3 up belong to the container.
	PassFDs int `json:"passFDs"`
	// StateDirFD (init): an O_PATH fd of the state dir holding exec.fifo.
	StateDirFD int `json:"stateDirFD,omitempty"`
	// ExeFD (>0): the fd of the read-only berth binary the child was
	// exec'd from; the child closes it at once (see child.go, step 2).
	ExeFD int `json:"exeFD,omitempty"`
	// RuntimeHooks (init): stop before pivot_root so the parent runs the
	// createRuntime and prestart hooks.
	RuntimeHooks bool `json:"runtimeHooks,omitempty"`
	NoPivot      bool `json:"noPivot,omitempty"`
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// CgroupPaths maps a v1 subsystem (or "" for v2) to the container's
	// cgroup directory on the host, for bind-mounting a cgroup mount
	// without a cgroup namespace.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// State is what hooks run by the child get on stdin.
	State specs.State `json:"state"`
}

// JoinNS is one namespace to enter.
type JoinNS struct {
	Type specs.LinuxNamespaceType `json:"type"`
	FD   int                      `json:"fd"`
}

// Msg is one message on the sync socket, either way.
type Msg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
}

// Message types.
const (
	MsgHooks     = "hooks"      // child → parent: run createRuntime/prestart now
	MsgHooksDone = "hooks-done" // parent → child
	MsgConsole   = "console"    // child → parent, with the pty master attached
	MsgCreated   = "created"    // init → parent: waiting on exec.fifo
	MsgForked    = "forked"     // child → parent: Pid is the init it forked; send it the Config again
	MsgError     = "error"      // either way
)

// WriteFrame sends v as one length-prefixed JSON frame on the stream socket
// fd, with file descriptor attach (if >= 0) as SCM_RIGHTS on its first byte.
func WriteFrame(fd int, v any, attach int) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	var oob []byte
	if attach >= 0 {
		oob = unix.UnixRights(attach)
	}
	for len(buf) > 0 {
		n, err := unix.SendmsgN(fd, buf, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync socket write: %w", err)
		}
		buf, oob = buf[n:], nil
	}
	return nil
}

// HelperFailure is what the userns helper (internal/runtime) writes on the
// sync socket instead of a frame when one of its steps fails: 4 bytes,
// 0xff, the step number and the errno (16 bits, little endian). No frame
// starts with 0xff (that would be a body over 4 GiB - 16 MiB).
type HelperFailure struct {
	Step  int
	Errno unix.Errno
}

func (f *HelperFailure) Error() string {
	return fmt.Sprintf("user namespace helper step %d: %v", f.Step, f.Errno)
}

// ReadFrame reads one frame into v. It returns a received fd, or -1.
// It returns io.EOF when the peer closed the socket (for an exec child: the
// execve succeeded), and a *HelperFailure for the userns helper's status.
func ReadFrame(fd int, v any) (int, error) {
	head := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*4))
	got, received := 0, -1
	for got < 4 {
		n, oobn, _, _, err := unix.Recvmsg(fd, head[got:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("sync socket read: %w", err)
		}
		if n == 0 {
			if got == 0 {
				return -1, io.EOF
			}
			return -1, io.ErrUnexpectedEOF
		}
		if oobn > 0 {
			if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, c := range cmsgs {
					if fds, err := unix.ParseUnixRights(&c); err == nil && len(fds) > 0 {
						received = fds[0]
						for _, extra := range fds[1:] {
							unix.Close(extra)
						}
					}
				}
			}
		}
		got += n
	}
	if head[0] == 0xff {
		return received, &HelperFailure{Step: int(head[1]), Errno: unix.Errno(binary.LittleEndian.Uint16(head[2:]))}
	}
	body := make([]byte, binary.BigEndian.Uint32(head))
	for got = 0; got < len(body); {
		n, err := unix.Read(fd, body[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return received, fmt.Errorf("sync socket read: %w", err)
		}
		if n == 0 {
			return received, io.ErrUnexpectedEOF
		}
		got += n
	}
	if err := json.Unmarshal(body, v); err != nil {
		return received, fmt.Errorf("sync socket: bad frame: %w", err)
	}
	return received, nil
}
