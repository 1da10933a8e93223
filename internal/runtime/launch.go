package runtime

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"berth/internal/cgroups"
	"berth/internal/errdefs"
	"berth/internal/nsinit"
)

// launch describes one re-exec'd child (container init or exec process).
type launch struct {
	cfg        *nsinit.Config
	io         IO
	passFiles  []*os.File // become the container's fds 3, 4, ...
	joinFiles  []*os.File // namespaces to setns, in cfg.Namespaces order
	stateDir   *os.File   // init: O_PATH of the state dir (exec.fifo)
	rootFile   *os.File   // exec: the root to chroot into (no mount namespace)
	userNS     *os.File   // a user namespace to join first, via the userns helper
	cloneflags uintptr
	uidMaps    []syscall.SysProcIDMap
	gidMaps    []syscall.SysProcIDMap
	pidNS      string // a PID namespace to fork into (set on the forking thread)
	cgroup     cgroups.Manager
	// ready runs when the init reports "created" (write the resource
	// limits: not earlier, or a pids limit could starve the init's own Go
	// runtime of threads, which runc avoids the same way).
	ready func(pid int) error
	// onHooks runs when the init stops before pivot_root.
	onHooks func(pid int) error
}

// start runs the child through its setup. On success it returns the child
// (unreaped: the caller owns it) once the init reports "created" or the
// exec child has exec'd. On failure the child is killed and reaped.
func (r *Runtime) start(l *launch) (_ *os.Process, retErr error) {
	exe, err := r.exe.get()
	if err != nil {
		return nil, fmt.Errorf("prepare berth binary for the container: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parentSock := fds[0]
	childSock := os.NewFile(uintptr(fds[1]), "sync")
	defer unix.Close(parentSock)
	defer childSock.Close()

	extra := append([]*os.File{}, l.passFiles...)
	next := func(f *os.File) int {
		extra = append(extra, f)
		return 3 + len(extra) - 1
	}
	l.cfg.PassFDs = len(l.passFiles)
	syncFD := next(childSock)
	if l.stateDir != nil {
		l.cfg.StateDirFD = next(l.stateDir)
	}
	if l.rootFile != nil {
		l.cfg.RootFD = next(l.rootFile)
	}
	for i, f := range l.joinFiles {
		l.cfg.Namespaces[i].FD = next(f)
	}
	exeFD := next(exe)
	l.cfg.ExeFD = exeFD
	path, args := "/proc/self/fd/"+strconv.Itoa(exeFD), []string{"berth-init"}
	if l.userNS != nil {
		// The helper joins the user namespace, then execs berth (see
		// usernshelper.go); nsinit closes the fds it leaves behind.
		helper, err := usernsHelperFile()
		if err != nil {
			return nil, err
		}
		userFD := next(l.userNS)
		helperFD := next(helper)
		args = append([]string{"berth-userns", strconv.Itoa(userFD), strconv.Itoa(syncFD), path}, args...)
		path = "/proc/self/fd/" + strconv.Itoa(helperFD)
	}

	cmd := &exec.Cmd{
		Path:       path,
		Args:       args,
		Env:        []string{nsinit.EnvVar + "=" + l.cfg.Mode + ":" + strconv.Itoa(syncFD)},
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 l.cloneflags,
			UidMappings:                l.uidMaps,
			GidMappings:                l.gidMaps,
			GidMappingsEnableSetgroups: true,
			Setsid:                     true,
		},
	}
	if l.cloneflags&unix.CLONE_NEWUSER != 0 {
		// Become root of the new user namespace before the exec: a host
		// uid not mapped into it would make execve drop every capability
		// the child needs to set the container up.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if !l.cfg.Process.Terminal {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = l.io.Stdin, l.io.Stdout, l.io.Stderr
	}
	if cmd.Stdin == nil || cmd.Stdout == nil || cmd.Stderr == nil {
		// exec.Cmd would open /dev/null per nil stream; one is enough.
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		defer null.Close()
		if cmd.Stdin == nil {
			cmd.Stdin = null
		}
		if cmd.Stdout == nil {
			cmd.Stdout = null
		}
		if cmd.Stderr == nil {
			cmd.Stderr = null
		}
	}

	if err := startCmd(cmd, l.pidNS); err != nil {
		return nil, fmt.Errorf("start container process: %w", err)
	}
	childSock.Close()
	proc := cmd.Process
	defer func() {
		if retErr != nil {
			_ = proc.Kill()
			_, _ = proc.Wait()
		}
	}()

	if l.cgroup != nil {
		if err := l.cgroup.Apply(proc.Pid); err != nil {
			return nil, fmt.Errorf("join cgroup: %w", err)
		}
	}
	if err := nsinit.WriteFrame(parentSock, l.cfg, -1); err != nil {
		// A userns helper that failed wrote why before it exited.
		var hf *nsinit.HelperFailure
		if _, rerr := nsinit.ReadFrame(parentSock, &nsinit.Msg{}); errors.As(rerr, &hf) {
			return nil, helperError(hf)
		}
		return nil, fmt.Errorf("send config to container process: %w", err)
	}
	for {
		var m nsinit.Msg
		fd, err := nsinit.ReadFrame(parentSock, &m)
		var hf *nsinit.HelperFailure
		if errors.As(err, &hf) {
			return nil, helperError(hf)
		}
		if errors.Is(err, io.EOF) {
			if l.cfg.Mode == nsinit.ModeExec {
				return proc, nil // execve closed the socket
			}
			return nil, errors.New("container init exited during setup")
		}
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case nsinit.MsgError:
			return nil, errdefs.InvalidParameter(fmt.Errorf("container init: %s", m.Error))
		case nsinit.MsgHooks:
			reply := nsinit.Msg{Type: nsinit.MsgHooksDone}
			var herr error
			if l.onHooks != nil {
				herr = l.onHooks(proc.Pid)
			}
			if herr != nil {
				reply = nsinit.Msg{Type: nsinit.MsgError, Error: herr.Error()}
			}
			if err := nsinit.WriteFrame(parentSock, reply, -1); err != nil {
				return nil, err
			}
			if herr != nil {
				return nil, herr
			}
		case nsinit.MsgConsole:
			if fd < 0 {
				return nil, errors.New("container sent a console message without the pty")
			}
			if err := handConsole(os.NewFile(uintptr(fd), "/dev/ptmx"), l.io); err != nil {
				return nil, err
			}
		case nsinit.MsgForked:
			// The child (in a joined user namespace) unshared a new PID
			// namespace and forked the init into it as our child
			// (CLONE_PARENT); it exits now. The init reads the Config
			// again, without the namespaces to unshare.
			stage1 := proc
			_, _ = stage1.Wait()
			initProc, err := os.FindProcess(m.Pid)
			if err != nil {
				return nil, fmt.Errorf("container init %d: %w", m.Pid, err)
			}
			proc = initProc
			cfg := *l.cfg
			cfg.Unshare = 0
			cfg.ExeFD = 0 // closed before the fork; the number may be reused
			if err := nsinit.WriteFrame(parentSock, &cfg, -1); err != nil {
				return nil, fmt.Errorf("send config to container init: %w", err)
			}
		case nsinit.MsgCreated:
			if l.ready != nil {
				if err := l.ready(proc.Pid); err != nil {
					return nil, err
				}
			}
			return proc, nil
		default:
			return nil, fmt.Errorf("unexpected message %q from container process", m.Type)
		}
	}
}

// startCmd forks the child; with pidNS, from a thread that joined that PID
// namespace first (setns(CLONE_NEWPID) only affects children). The thread
// stays locked when its goroutine ends, so Go throws it away.
func startCmd(cmd *exec.Cmd, pidNS string) error {
	if pidNS == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		fd, err := unix.Open(pidNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open pid namespace %s: %w", pidNS, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
			errc <- fmt.Errorf("join pid namespace %s: %w", pidNS, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// handConsole delivers the pty master: in-process, or over the console
// socket the way runc does (the fd in one SCM_RIGHTS message).
func handConsole(master *os.File, o IO) error {
	defer master.Close()
	if o.OnConsole != nil {
		// The callback owns a duplicate; ours is closed on return.
		dup, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return o.OnConsole(os.NewFile(uintptr(dup), master.Name()))
	}
	if o.ConsoleSocket == "" {
		return errdefs.InvalidParameter(errors.New("the process has a terminal but no console socket was given"))
	}
	conn, err := net.Dial("unix", o.ConsoleSocket)
	if err != nil {
		return fmt.Errorf("connect console socket %s: %w", o.ConsoleSocket, err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("console socket %s is not a unix socket", o.ConsoleSocket)
	}
	if _, _, err := uc.WriteMsgUnix([]byte(master.Name()), unix.UnixRights(int(master.Fd())), nil); err != nil {
		return fmt.Errorf("send pty over console socket %s: %w", o.ConsoleSocket, err)
	}
	return nil
}
