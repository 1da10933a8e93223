package nsinit

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// unshareNamespaces is step 2b, only for an init whose user namespace is
// joined by path: the userns helper joined it and exec'd us as its root, so
// namespaces we create now are owned by it, as the spec means. (Clone flags
// in the parent would make them belong to the host's user namespace.)
//
// A new PID (or time) namespace applies to children only, so we fork the
// init into it, as a child of the runtime (CLONE_PARENT) so that the runtime
// reaps it like any init, report its pid (valid in the runtime's PID
// namespace: we were forked in it) and exit. The parent then sends the init
// the Config again, without Unshare, and it starts over at step 1 as pid 1.
func unshareNamespaces(c *Config, mode string, syncFD int) error {
	if err := unix.Unshare(c.Unshare); err != nil {
		return fmt.Errorf("unshare namespaces (flags %#x) in the joined user namespace: %w", c.Unshare, err)
	}
	if c.Unshare&(unix.CLONE_NEWPID|unix.CLONE_NEWTIME) == 0 {
		return nil
	}
	// The fork must come from this thread, the one that unshared; fds 3 and
	// up are not close-on-exec and are inherited as they are.
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"berth-init"}, &syscall.ProcAttr{
		Env:   []string{EnvVar + "=" + mode + ":" + strconv.Itoa(syncFD)},
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Cloneflags: unix.CLONE_PARENT},
	})
	if err != nil {
		return fmt.Errorf("fork the init into its new PID namespace: %w", err)
	}
	if err := WriteFrame(syncFD, Msg{Type: MsgForked, Pid: pid}, -1); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return err
	}
	os.Exit(0)
	return nil
}
