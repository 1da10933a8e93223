package nsinit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// RlimitNumber maps "RLIMIT_NOFILE" to its resource number.
func RlimitNumber(name string) (int, bool) {
	n, ok := rlimitNames[strings.ToUpper(name)]
	return n, ok
}

// lateRlimit lists the limits that could starve this process's Go runtime
// once set (no more address space or heap for it, no more threads): they
// are set last, just before execve, by execImage.exec.
var lateRlimit = map[int]bool{unix.RLIMIT_AS: true, unix.RLIMIT_DATA: true, unix.RLIMIT_NPROC: true}

// setRlimits applies the spec's rlimits except the late ones. Raising a
// hard limit needs CAP_SYS_RESOURCE, which root may lack here: then the
// hard limit stays and the soft one is clamped to it.
func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := RlimitNumber(l.Type)
		if !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		if lateRlimit[res] {
			continue
		}
		// syscall.Setrlimit (not prlimit) so Go's exec keeps our NOFILE.
		lim := syscall.Rlimit{Cur: l.Soft, Max: l.Hard}
		err := syscall.Setrlimit(res, &lim)
		if errors.Is(err, unix.EPERM) {
			var cur syscall.Rlimit
			if syscall.Getrlimit(res, &cur) == nil {
				lim.Max = cur.Max
				lim.Cur = min(l.Soft, cur.Max)
				err = syscall.Setrlimit(res, &lim)
			}
		}
		if err != nil {
			return fmt.Errorf("setrlimit %s soft=%d hard=%d: %w", l.Type, l.Soft, l.Hard, err)
		}
	}
	return nil
}

// execImage is everything execve needs, built while allocating is safe.
type execImage struct {
	path      string
	argv, env []string
	pathp     *byte
	argvp     []*byte
	envp      []*byte
	late      []lateLimit
}

type lateLimit struct {
	res  int
	name string
	lim  unix.Rlimit
	cur  unix.Rlimit // scratch for the EPERM retry
}

func prepareExec(path string, argv, env []string, limits []specs.POSIXRlimit) (*execImage, error) {
	img := &execImage{path: path, argv: argv, env: env}
	for _, l := range limits {
		if res, ok := RlimitNumber(l.Type); ok && lateRlimit[res] {
			img.late = append(img.late, lateLimit{res: res, name: l.Type, lim: unix.Rlimit{Cur: l.Soft, Max: l.Hard}})
		}
	}
	var err error
	if img.pathp, err = unix.BytePtrFromString(path); err != nil {
		return nil, fmt.Errorf("exec %s: %w", path, err)
	}
	if img.argvp, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return nil, fmt.Errorf("exec %s: bad argument: %w", path, err)
	}
	if img.envp, err = syscall.SlicePtrFromStrings(env); err != nil {
		return nil, fmt.Errorf("exec %s: bad environment: %w", path, err)
	}
	return img, nil
}

// exec replaces the process with the container's program. Without late
// rlimits it is Go's exec (which restores the soft RLIMIT_NOFILE that Go
// raised at start-up, unless the spec set one). With them it sets those
// limits and calls execve with raw system calls and no allocation in
// between, since the Go runtime may not be able to map memory any more.
// (In that case an unset RLIMIT_NOFILE stays at the value Go raised it to.)
func (img *execImage) exec() error {
	if len(img.late) == 0 {
		err := unix.Exec(img.path, img.argv, img.env)
		return fmt.Errorf("exec %s: %w", img.path, err)
	}
	for i := range img.late {
		l := &img.late[i]
		_, _, e := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(l.res), uintptr(unsafe.Pointer(&l.lim)), 0, 0, 0)
		if e == unix.EPERM {
			// Keep the hard limit we cannot raise; clamp the soft one.
			if _, _, e = unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(l.res), 0, uintptr(unsafe.Pointer(&l.cur)), 0, 0); e == 0 {
				l.lim.Max = l.cur.Max
				l.lim.Cur = min(l.lim.Cur, l.cur.Max)
				_, _, e = unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(l.res), uintptr(unsafe.Pointer(&l.lim)), 0, 0, 0)
			}
		}
		if e != 0 {
			return fmt.Errorf("setrlimit %s soft=%d hard=%d: %w", l.name, l.lim.Cur, l.lim.Max, e)
		}
	}
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(img.pathp)),
		uintptr(unsafe.Pointer(&img.argvp[0])), uintptr(unsafe.Pointer(&img.envp[0])))
	return fmt.Errorf("exec %s: %w", img.path, e)
}

// setUser switches the calling thread to the spec user, keeping its
// capabilities for applyCaps to trim. Raw syscalls: Go's Setuid would act
// on every thread, and only this one matters.
func setUser(u specs.User, userNS bool) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	var gp uintptr
	if len(groups) > 0 {
		gp = uintptr(unsafe.Pointer(&groups[0]))
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), gp, 0); e != 0 {
		// In a user namespace with setgroups denied, only an empty list
		// was asked for by anyone sane.
		if !(userNS && e == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS, 0): %w", err)
	}
	return nil
}

// enterCwd changes to the process cwd and proves it is inside the root: a
// cwd reached through a leaked host fd (/proc/self/fd/N) has no path from
// our root, and getcwd reports it as unreachable (CVE-2024-21626).
func enterCwd(cwd string) error {
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return fmt.Errorf("cwd %q is not absolute", cwd)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %s: %w", cwd, err)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("cwd %s: getcwd: %w", cwd, err)
	}
	if n == 0 || buf[0] != '/' {
		return fmt.Errorf("cwd %s is outside the container root", cwd)
	}
	return nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath resolves args[0] inside the container, with the container's PATH.
func lookPath(args, env []string) (string, error) {
	if len(args) == 0 || args[0] == "" {
		return "", errors.New("process has no args")
	}
	name := args[0]
	if strings.Contains(name, "/") {
		if err := checkExec(name); err != nil {
			return "", fmt.Errorf("exec %s: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if checkExec(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func checkExec(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

// withHome adds HOME from the container's /etc/passwd when env lacks it.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if f, err := os.Open("/etc/passwd"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) >= 6 && fields[2] == strconv.Itoa(int(uid)) {
				home = fields[5]
				break
			}
		}
		f.Close()
	}
	return append(append([]string(nil), env...), "HOME="+home)
}
