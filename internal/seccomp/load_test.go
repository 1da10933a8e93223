package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// childEnv selects a child scenario when the test binary re-executes itself:
// a seccomp filter cannot be removed, so every real load happens in a child.
const childEnv = "BERTH_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := childMain(mode, os.Getenv("BERTH_SECCOMP_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func denyMkdirat(flags ...specs.LinuxSeccompFlag) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         flags,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EPERM))},
			// An argument rule checked by the kernel: getpriority(which=1234) fails EACCES.
			{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1234, Op: specs.OpEqualTo}}}},
	}
}

func childMain(mode, dir string) error {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	mkdir := func(name string) error { return unix.Mkdirat(unix.AT_FDCWD, filepath.Join(dir, name), 0o755) }
	if err := mkdir("before"); err != nil {
		return fmt.Errorf("mkdirat before the filter: %w", err)
	}
	switch mode {
	case "mkdirat":
		if err := Load(denyMkdirat()); err != nil {
			return err
		}
		if err := mkdir("after"); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mkdirat after the filter: got %v, want EPERM", err)
		}
		if _, err := unix.Getpriority(1234, 0); !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("getpriority(1234): got %v, want EACCES", err)
		}
		if _, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err != nil {
			return fmt.Errorf("getpriority(PRIO_PROCESS) must pass the filter: %w", err)
		}
	case "tsync":
		// Without TSYNC only this thread is filtered; with it, all threads are.
		if err := Load(denyMkdirat(specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_TSYNC")); err != nil {
			return err
		}
		errc := make(chan error)
		go func() {
			runtime.LockOSThread() // a fresh goroutine locked: another thread than ours
			errc <- mkdir("other-thread")
		}()
		if err := <-errc; !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mkdirat on another thread after TSYNC: got %v, want EPERM", err)
		}
	case "listener":
		fd, err := LoadListener(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/unused",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify},
				{Names: []string{"mkdirat"}, Action: specs.ActErrno}}})
		if err != nil {
			return err
		}
		// The fd is a seccomp notification listener (anon inode).
		link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil || link != "anon_inode:seccomp notify" {
			return fmt.Errorf("listener fd %d is %q (%v)", fd, link, err)
		}
		if err := mkdir("after"); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mkdirat with the listener filter: got %v, want EPERM", err)
		}
	case "docker":
		p, err := dockerProfileFor(dockerCaps)
		if err != nil {
			return err
		}
		if err := Load(p); err != nil {
			return err
		}
		if err := mkdir("allowed"); err != nil {
			return fmt.Errorf("mkdirat under Docker's profile: %w", err)
		}
		if err := unix.Mount("none", dir, "tmpfs", 0, ""); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mount under Docker's profile: got %v, want EPERM", err)
		}
		if err := unix.Unshare(unix.CLONE_NEWUSER); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("unshare(CLONE_NEWUSER) under Docker's profile: got %v, want EPERM", err)
		}
		if _, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("socket(AF_VSOCK) under Docker's profile: got %v, want EPERM", err)
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return fmt.Errorf("socket(AF_UNIX) under Docker's profile: %w", err)
		}
		unix.Close(fd)
		// A child process works (fork/clone and execve pass the filter).
		if out, err := exec.Command("/bin/sh", "-c", "echo ok").Output(); err != nil || string(out) != "ok\n" {
			return fmt.Errorf("running /bin/sh under Docker's profile: %q, %v", out, err)
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

func runChild(t *testing.T, mode string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "BERTH_SECCOMP_TEST_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", mode, err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "before")); err != nil {
		t.Fatalf("child %s did not run: %v", mode, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "after")); err == nil {
		t.Fatalf("child %s: mkdirat succeeded under the filter", mode)
	}
}

// These run the compiled programs in the real kernel. They need no root:
// no_new_privs lets any process load a filter.
func TestLoadDeniesMkdirat(t *testing.T) { runChild(t, "mkdirat") }
func TestLoadTSync(t *testing.T)         { runChild(t, "tsync") }
func TestLoadDockerDefault(t *testing.T) { runChild(t, "docker") }
func TestLoadListener(t *testing.T)      { runChild(t, "listener") }

func TestLoadNotifyNeedsListener(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}}
	if _, err := Compile(s); err != nil {
		t.Fatalf("Compile with a listener path: %v", err)
	}
	if err := Load(s); err == nil {
		t.Fatal("Load of a NOTIFY profile succeeded; want an error pointing to LoadListener")
	}
}
