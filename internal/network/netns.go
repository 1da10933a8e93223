package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// onThreadIn runs do on a locked OS thread that enter has moved into
// another network namespace (setns or unshare move only the calling
// thread), then moves the thread back before unlocking it; a thread that
// cannot be moved back is left locked, and Go ends it with its goroutine.
func onThreadIn(enter, do func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		derr := do()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(derr, fmt.Errorf("return to the daemon's netns: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- derr
	}()
	return <-errc
}

// createNetns makes a new network namespace and bind-mounts it at path, so
// that it outlives every process and the runtime can join it by path.
// unshare(CLONE_NEWNET) moves the calling thread, hence onThreadIn.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns mount point %s: %w", path, err)
	}
	f.Close()
	err = onThreadIn(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		return nil
	}, func() error {
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount netns at %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetns unmounts and removes a namespace made by createNetns; the
// namespace itself goes when its last process and mount are gone.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// ReleaseNetns removes the mount of a container's namespace that no network
// holds any more (its last one was disconnected while it ran).
func ReleaseNetns(path string) error { return removeNetns(path) }
