// Package initproc is berth's minimal init for `docker run --init`: the
// berth binary, bind-mounted read-only at /sbin/berth-init, runs as the
// container's pid 1 and does the three jobs an application process usually
// does not:
//
//  1. It starts the command given after "--" in a process group of its
//     own, made the terminal's foreground group when stdin is a terminal
//     (so ^C reaches the application, as with tini).
//  2. It forwards every signal it can catch to that child (docker stop's
//     SIGTERM, docker kill's signals, SIGWINCH, ...). As pid 1 the kernel
//     would otherwise drop signals it has no handler for.
//  3. It reaps every process re-parented to it (orphans whose parents
//     exited), so zombies never pile up in the PID namespace.
//
// When the child exits, Main returns its exit status, or 128+signal when a
// signal killed it; the caller exits with that and the kernel then ends the
// rest of the PID namespace. Outside a PID namespace (tests) it registers
// as a child subreaper to get the same re-parenting.
package initproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit codes for failures of the init itself, following the shell's
// convention that docker run also uses.
const (
	exitUsage      = 2
	exitCannotExec = 126
	exitNotFound   = 127
)

// Main runs the init. args are the arguments after the program name:
// "-- cmd arg..." (the "--" is optional). It returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: usage: berth-init -- command [args...]")
		return exitUsage
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotExec
	}

	// Receive every signal before the child exists, so none is lost in
	// between; SIGCHLD drives reaping.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	if os.Getpid() != 1 {
		// Orphans of the child's tree come to us as they would to pid 1.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "berth-init: become subreaper: %v\n", err)
		}
	}

	attr := &syscall.SysProcAttr{Setpgid: true}
	if isTerminal(0) {
		attr.Foreground = true
		attr.Ctty = 0
	}
	proc := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: attr}
	pid, err := syscall.ForkExec(path, args, proc)
	if err != nil && attr.Foreground {
		// The terminal is not our controlling terminal (TIOCSPGRP fails):
		// run the child in the background group, as tini does then.
		attr.Foreground = false
		pid, err = syscall.ForkExec(path, args, proc)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, syscall.ENOENT) {
			return exitNotFound
		}
		return exitCannotExec
	}

	for {
		if code, done := reap(pid); done {
			return code
		}
		sig := (<-sigs).(syscall.Signal)
		if !forwarded(sig) {
			continue
		}
		// ESRCH only means the child is already gone: its exit status
		// arrives with the next reap.
		_ = unix.Kill(pid, sig)
	}
}

// forwarded reports whether a received signal is passed on to the child.
// SIGCHLD is ours (reaping); SIGURG is also sent by the Go runtime to
// preempt its own threads; SIGTTIN/SIGTTOU concern our own terminal use.
func forwarded(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}

// reap collects every exited child without blocking. It reports the main
// child's exit code once that child has been collected.
func reap(child int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD (nothing left) or nothing exited yet.
			return code, done
		}
		if pid != child {
			continue
		}
		done = true
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		default:
			code = 1
		}
	}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
