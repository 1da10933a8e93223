// Package nsinit is berth's one process trick: the code that runs inside a
// re-exec'd copy of the berth binary to become a container's init or an exec'd
// process. Nothing else in berth reads os.Args or the environment at start-up
// for this purpose; internal/runtime starts the child and speaks the protocol
// in protocol.go over a socketpair.
//
// Why a re-exec: Go cannot setns(2) a multi-threaded process into a mount or
// user namespace. The child therefore locks its main goroutine to the main OS
// thread in init(), does all namespace work on that thread only, and calls
// execve(2) from it: execve kills the other threads, and the calling thread's
// namespaces, credentials, capabilities and seccomp filter are what the new
// program gets.
//
// The parent (internal/runtime) does, in order:
//  1. Opens a read-only detached bind mount of its own executable
//     (open_tree + mount_setattr(MOUNT_ATTR_RDONLY); memfd copy as fallback)
//     and execs the child from it, so /proc/<pid>/exe cannot be opened for
//     writing from inside the container (CVE-2019-5736).
//  2. For a PID namespace to join (spec path, or exec into a container): locks
//     a goroutine to a thread, setns(CLONE_NEWPID) on it and forks from that
//     thread; the goroutine exits still locked, so the tainted thread dies.
//     New namespaces are clone flags (+ uid/gid maps for a user namespace).
//     A user namespace to join (spec path, or exec into a container that has
//     one) is joined by the "userns helper" (internal/runtime/usernshelper.go),
//     a tiny static program exec'd first: setns(CLONE_NEWUSER), become uid
//     and gid 0 there, exec the child. Its failure comes back on the sync
//     socket as a 4-byte status naming the step and errno (HelperFailure).
//     With a joined user namespace the new namespaces are not clone flags
//     (they would belong to the host's user namespace) but Config.Unshare.
//  3. Moves the child into the container's cgroups and writes the limits.
//  4. Sends the Config (spec, fds of namespaces to join) and serves the
//     child's requests: run createRuntime/prestart hooks, take the console.
//
// The child (Init), in order — container init:
//  1. init(): runtime.LockOSThread; everything below runs on this thread.
//     With a new user namespace the fork made us root in it first (a host
//     uid left unmapped would lose every capability at the re-exec).
//  2. Read the Config from the sync socket; close the fd of the berth binary
//     we were exec'd from (else its last close, at our execve, would make
//     the user program wait for an RCU grace period after `start`
//     returned); non-dumpable; umask 0.
//     2b. Only with Config.Unshare (user namespace joined by path): unshare
//     those namespaces (mnt, uts, ipc, net, pid, ...) now that we are root
//     of the joined user namespace, so it owns them. A new PID namespace
//     applies to children only: fork the init with CLONE_PARENT (so it is
//     the runtime's child), send MsgForked with its pid and exit; the
//     parent sends the init the Config again (without Unshare) and the
//     init, pid 1 of the new namespace, starts over at step 1. Namespaces
//     joined by path (step 4) are then entered with the capabilities of the
//     joined user namespace: one it does not own (say, the host's network
//     namespace) is refused with EPERM, as setns requires.
//  3. oom_score_adj (EPERM tolerated for negative values).
//  4. unshare(CLONE_FS), setns into the namespaces given by fd (ipc, uts, net,
//     cgroup, mnt); unshare(CLONE_NEWCGROUP) now that the parent placed us in
//     the container's cgroup.
//  5. hostname, domainname (the UTS namespace is new or joined by path).
//  6. rootfs: propagation of / and a private parent mount (only in a mount
//     namespace of our own, new or joined), bind the rootfs onto itself,
//     spec mounts in order with destinations resolved inside the rootfs
//     (filepath-securejoin + mounting onto /proc/self/fd/N of a handle
//     opened inside the root), /dev devices and links; parent runs
//     createRuntime hooks; we run createContainer hooks; pivot_root (or
//     MS_MOVE+chroot with NoPivot, or a plain chroot without a mount
//     namespace, whose mounts the runtime removes at delete).
//  7. sysctls, console (pty from the container's devpts), masked paths,
//     readonly paths, readonly root.
//  8. Every fd above the passed ones marked close-on-exec; rlimits except
//     AS, DATA and NPROC; session keyring; cwd entered and checked to be
//     inside the root (CVE-2024-21626).
//  9. Resolve the executable in the container; build execve's arguments.
//  10. Per-thread credentials, as runc orders them, before "created" so a
//     refusal fails create: seccomp (early, while holding CAP_SYS_ADMIN,
//     when no_new_privileges is off), AppArmor exec profile (where the
//     kernel has AppArmor), bounding set, uid/gid/groups with keep-caps,
//     the other capability sets, no_new_privs.
//  11. Tell the parent "created"; block opening exec.fifo (O_WRONLY) until
//     `start` reads it, and keep it open (close-on-exec) so that `start`
//     returns only once the program runs; startContainer hooks.
//  12. seccomp (late, when no_new_privileges is on); umask; AS, DATA and
//     NPROC rlimits with raw system calls (past them the Go runtime may not
//     map memory or start threads); execve.
//
// An exec child does steps 1-4 (joining every namespace of the container,
// including mnt, which also sets its root and cwd; without one it chroots to
// the init's root), then 7's console, 8, 9, 10 and 12.
package nsinit

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// EnvVar marks a process as a re-exec'd child; its value is "<mode>:<syncfd>".
const EnvVar = "_BERTH_NSINIT"

// Modes of the child.
const (
	ModeInit = "init"
	ModeExec = "exec"
)

func init() {
	if os.Getenv(EnvVar) != "" {
		// Keep the main goroutine on the main thread: every namespace and
		// credential change below is per-thread, and execve runs from here.
		runtime.LockOSThread()
	}
}

// IsChild reports whether this process was started by internal/runtime as a
// container init or exec child.
func IsChild() bool { return os.Getenv(EnvVar) != "" }

// Init runs the container init or exec child when this process is one, and
// never returns in that case. In any other process it returns at once.
// Call it first thing in main (and in TestMain of packages whose tests start
// containers with the test binary as the runtime).
func Init() {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	mode, fdStr, _ := strings.Cut(v, ":")
	fd, err := strconv.Atoi(fdStr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth nsinit: bad %s=%q\n", EnvVar, v)
		os.Exit(1)
	}
	os.Unsetenv(EnvVar)
	child(mode, fd) // never returns
}
