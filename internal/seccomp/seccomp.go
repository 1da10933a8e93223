// Package seccomp compiles OCI seccomp profiles (specs.LinuxSeccomp) into
// classic BPF programs and installs them, without libseccomp (which needs
// cgo).
//
// Use: the runtime calls Compile early to validate a spec (errors are
// errdefs.InvalidParameter), then, in the container's init process on a
// locked OS thread, sets no_new_privs (or holds CAP_SYS_ADMIN) and calls
// Load as the very last step before execve, so that the filter does not
// constrain the runtime's own setup.
//
// The semantics follow libseccomp as runc uses it:
//   - the native ABI is always filtered, plus the listed architectures; a
//     call through any other ABI kills the process;
//   - syscall names unknown on an ABI are skipped for that ABI;
//   - several conditions in one rule are ANDed; several rules for one
//     syscall are ORed (first match in profile order wins); when no
//     conditional rule matches, the syscall's unconditional rule applies,
//     else the default action;
//   - ERRNO and TRACE without errnoRet return EPERM;
//   - 64-bit arguments are compared unsigned, as two 32-bit halves; on
//     32-bit ABIs only the low half is compared.
//
// Syscall tables are generated from golang.org/x/sys/unix:
//
//go:generate go run ./syscallgen -o syscalls_table.go
package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"berth/internal/errdefs"
)

// Compile translates s into a seccomp BPF program. A nil s compiles to a
// nil program (no filter).
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if s == nil {
		return nil, nil
	}
	prog, err := compile(s)
	if err != nil {
		return nil, err
	}
	return toSockFilter(prog)
}

func toSockFilter(prog []bpf.Instruction) ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assembling BPF: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// Load compiles s and installs it on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER), honouring s.Flags
// (SECCOMP_FILTER_FLAG_TSYNC applies it to every thread of the process).
// It does not set no_new_privs: without it the caller needs CAP_SYS_ADMIN.
// Profiles using SCMP_ACT_NOTIFY need LoadListener. A nil s loads nothing.
func Load(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	c, err := parse(s)
	if err != nil {
		return err
	}
	if c.usesNotify {
		return errdefs.InvalidParameter(errors.New("seccomp: profile uses SCMP_ACT_NOTIFY: load it with LoadListener"))
	}
	_, err = load(s, 0)
	return err
}

// LoadListener is Load for profiles that use SCMP_ACT_NOTIFY: it asks the
// kernel for a notification listener and returns its file descriptor, which
// the caller passes to the agent at s.ListenerPath and then closes.
func LoadListener(s *specs.LinuxSeccomp) (int, error) {
	if s == nil {
		return -1, errdefs.InvalidParameter(errors.New("seccomp: no profile to load"))
	}
	// TSYNC and NEW_LISTENER both use the return value; TSYNC_ESRCH makes
	// a TSYNC failure an errno instead of a thread id.
	extra := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	return load(s, extra)
}

func load(s *specs.LinuxSeccomp, extra uintptr) (int, error) {
	filter, err := Compile(s)
	if err != nil {
		return -1, err
	}
	flags, err := filterFlags(s.Flags)
	if err != nil {
		return -1, err
	}
	flags |= extra
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r1, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		err := fmt.Errorf("seccomp: loading a filter of %d instructions (flags %#x): %w", len(filter), flags, errno)
		if errno == unix.EACCES {
			err = fmt.Errorf("%w (set no_new_privs or hold CAP_SYS_ADMIN)", err)
		}
		return -1, err
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r1), nil
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r1 != 0 {
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronized to the new filter", r1)
	}
	return 0, nil
}
