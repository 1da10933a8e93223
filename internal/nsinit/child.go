package nsinit

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/internal/seccomp"
)

// child is the body of Init; the steps are numbered as in the package doc.
func child(mode string, syncFD int) {
	err := run(mode, syncFD)
	// Only reached on failure: a successful run ends in execve.
	if err == nil {
		err = errors.New("nsinit: returned without exec")
	}
	if werr := WriteFrame(syncFD, Msg{Type: MsgError, Error: err.Error()}, -1); werr != nil {
		// The parent is gone (after "created" it stops listening): the
		// container's stderr is the only place left.
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
	}
	os.Exit(127)
}

func run(mode string, syncFD int) error {
	// Step 2.
	var c Config
	if _, err := ReadFrame(syncFD, &c); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if c.Process == nil {
		return errors.New("config has no process")
	}
	if c.ExeFD > 0 {
		// The read-only bind of the berth binary we were exec'd from is a
		// detached mount: the close of the last fd of it dissolves it,
		// which waits for an RCU grace period (synchronize_rcu_expedited,
		// milliseconds on a busy host). Were that last fd ours until the
		// execve, the wait would fall in the user program's first moments,
		// after `start` has returned: a signal sent right after `start`
		// would reach a shell that has not set its trap yet (seen as
		// runtime-tools' killsig losing more often than with runc).
		// Closed now, the runtime process that opened it pays at its exit.
		_ = unix.Close(c.ExeFD)
	}
	// Non-dumpable: no ptrace or /proc/<pid>/{fd,exe,mem} access from the
	// container while we hold host resources. execve resets it.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	unix.Umask(0)
	if c.Unshare != 0 {
		// Step 2b (a user namespace joined by path). With a new PID
		// namespace this process exits here; the init it forked goes on.
		if err := unshareNamespaces(&c, mode, syncFD); err != nil {
			return err
		}
	}

	// Step 3.
	if c.Process.OOMScoreAdj != nil {
		v := strconv.Itoa(*c.Process.OOMScoreAdj)
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil &&
			!(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
			return fmt.Errorf("set oom_score_adj %s: %w", v, err)
		}
	}

	// Step 4.
	if err := joinNamespaces(&c); err != nil {
		return err
	}

	if mode == ModeInit {
		// Step 5.
		if err := setHostname(&c); err != nil {
			return err
		}
		// Steps 6 and 7 (all but the console).
		if err := setupRootfs(&c, syncFD); err != nil {
			return err
		}
	} else if c.RootFD > 0 {
		// The container shares the host's mount namespace: its root is
		// the init's chroot.
		if err := unix.Fchdir(c.RootFD); err != nil {
			return fmt.Errorf("chdir to the container root: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot to the container root: %w", err)
		}
		unix.Close(c.RootFD)
		if err := unix.Chdir("/"); err != nil {
			return fmt.Errorf("chdir /: %w", err)
		}
	} else if c.Spec != nil && c.Spec.Root != nil && c.Spec.Root.Path != "" {
		// setns(mnt) put us at the namespace's root, which pivot_root made
		// the container's root; chdir there to be sure.
		if err := unix.Chdir("/"); err != nil {
			return fmt.Errorf("chdir /: %w", err)
		}
	}

	if c.Process.Terminal {
		if err := setupConsole(&c, syncFD, mode == ModeInit); err != nil {
			return err
		}
	}
	if mode == ModeInit {
		if err := protectPaths(c.Spec); err != nil {
			return err
		}
	}

	// Step 8.
	firstPrivate := uint(3 + c.PassFDs)
	if err := unix.CloseRange(firstPrivate, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds >= %d close-on-exec: %w", firstPrivate, err)
	}
	if err := setRlimits(c.Process.Rlimits); err != nil {
		return err
	}
	if mode == ModeInit && !c.NoNewKeyring {
		// A fresh session keyring, so the container cannot read the host's.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + c.ID); err != nil &&
			!errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	cwdDone := false
	if err := enterCwd(c.Process.Cwd); err == nil {
		cwdDone = true
	} else if !errors.Is(err, unix.EACCES) {
		return err
	}

	// Step 9.
	env := withHome(c.Process.Env, c.Process.User.UID)
	path, err := lookPath(c.Process.Args, env)
	if err != nil {
		return err
	}
	img, err := prepareExec(path, c.Process.Args, env, c.Process.Rlimits)
	if err != nil {
		return err
	}

	// Step 10: credentials before "created", as runc does, so a capability
	// or user the kernel refuses fails create rather than a later start.
	var sc *specs.LinuxSeccomp
	if c.Spec != nil && c.Spec.Linux != nil {
		sc = c.Spec.Linux.Seccomp
	}
	if sc != nil && !c.Process.NoNewPrivileges {
		if err := seccomp.Load(sc); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	if err := applyAppArmor(c.Process.ApparmorProfile); err != nil {
		return err
	}
	if err := dropBounding(c.Process.Capabilities); err != nil {
		return err
	}
	if err := setUser(c.Process.User, c.UserNS); err != nil {
		return err
	}
	if !cwdDone {
		if err := enterCwd(c.Process.Cwd); err != nil {
			return err
		}
	}
	if err := applyCaps(c.Process.Capabilities); err != nil {
		return err
	}
	if c.Process.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}

	// Step 11.
	if mode == ModeInit {
		if err := WriteFrame(syncFD, Msg{Type: MsgCreated, Pid: os.Getpid()}, -1); err != nil {
			return err
		}
		// The fifo stays open (close-on-exec) so that `start` returns
		// only once the user program runs, or the init has died.
		if err := waitStart(c.StateDirFD); err != nil {
			return err
		}
		if c.Spec.Hooks != nil && len(c.Spec.Hooks.StartContainer) > 0 {
			st := c.State
			st.Status = specs.StateRunning
			if err := runHooks("startContainer", c.Spec.Hooks.StartContainer, st); err != nil {
				return err
			}
		}
	}

	// Step 12.
	if c.Process.NoNewPrivileges && sc != nil {
		if err := seccomp.Load(sc); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	umask := 0o022
	if c.Process.User.Umask != nil {
		umask = int(*c.Process.User.Umask)
	}
	unix.Umask(umask)
	// Again, in case anything above opened an fd without O_CLOEXEC.
	_ = unix.CloseRange(firstPrivate, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if mode == ModeExec {
		// Nothing goes to the parent after this: EOF on the socket means
		// the execve succeeded.
		_ = unix.CloseRange(uint(syncFD), uint(syncFD), unix.CLOSE_RANGE_CLOEXEC)
	}
	return img.exec()
}

// waitStart blocks until `start` opens exec.fifo for reading, then writes
// one byte. It leaves the fifo open, close-on-exec: `start` reads until EOF,
// which comes with our execve (or our death).
func waitStart(dirFD int) error {
	fd, err := unix.Openat(dirFD, "exec.fifo", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec.fifo: %w", err)
	}
	if _, err := unix.Write(fd, []byte{'0'}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write exec.fifo: %w", err)
	}
	return nil
}

func setHostname(c *Config) error {
	s := c.Spec
	if s.Hostname == "" && s.Domainname == "" {
		return nil
	}
	if !c.NewUTS {
		return errors.New("hostname or domainname set without a new UTS namespace")
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("setdomainname %q: %w", s.Domainname, err)
		}
	}
	return nil
}

var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// joinNamespaces is step 4. Mount goes last: it changes our root.
func joinNamespaces(c *Config) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	var mnt *JoinNS
	for i := range c.Namespaces {
		ns := &c.Namespaces[i]
		if ns.Type == specs.MountNamespace {
			mnt = ns
			continue
		}
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return fmt.Errorf("cannot join a %s namespace from the child", ns.Type)
		}
		if err := unix.Setns(ns.FD, flag); err != nil {
			return fmt.Errorf("setns %s namespace: %w", ns.Type, err)
		}
		unix.Close(ns.FD)
	}
	if mnt != nil {
		if err := unix.Setns(mnt.FD, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("setns mount namespace: %w", err)
		}
		unix.Close(mnt.FD)
	}
	if c.UnshareCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	return nil
}
