package specgen

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"berth/internal/errdefs"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// process fills spec.Process: args, env, user, cwd, terminal, rlimits and
// the small per-process knobs.
func (b *builder) process() error {
	p := b.spec.Process
	args, err := Args(b.cfg.Entrypoint, b.cfg.Cmd, b.img.Entrypoint, b.img.Cmd)
	if err != nil {
		return err
	}
	p.Args = args
	if b.hc.Init != nil && *b.hc.Init && !b.hc.PidMode.IsHost() {
		// Like Docker, only a container with its own PID namespace gets the
		// init: elsewhere something else is already pid 1.
		if b.in.InitPath == "" {
			return errors.New("--init requested but no init binary path was given")
		}
		p.Args = append([]string{InitPathInContainer, "--"}, args...)
	}

	cwd := b.cfg.WorkingDir
	if cwd == "" {
		cwd = b.img.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return errdefs.InvalidParameter(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cwd))
	}
	p.Cwd = path.Clean(cwd)

	userSpec := b.cfg.User
	if userSpec == "" {
		userSpec = b.img.User
	}
	u, home, err := resolveUser(b.in.Rootfs, userSpec, b.hc.GroupAdd)
	if err != nil {
		return err
	}
	if b.hc.Umask != nil {
		mask := *b.hc.Umask
		u.Umask = &mask
	}
	p.User = u

	p.Env = Env(b.cfg.Env, b.img.Env, b.spec.Hostname, b.cfg.Tty, home)
	p.Terminal = b.cfg.Tty
	if b.cfg.Tty && (b.hc.ConsoleSize[0] > 0 || b.hc.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: b.hc.ConsoleSize[0], Width: b.hc.ConsoleSize[1]}
	}

	rl, err := rlimits(b.hc.Ulimits)
	if err != nil {
		return err
	}
	p.Rlimits = rl

	if b.hc.OomScoreAdj < -1000 || b.hc.OomScoreAdj > 1000 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid value %d, range for oom score adj is [-1000, 1000]", b.hc.OomScoreAdj))
	}
	score := b.hc.OomScoreAdj
	p.OOMScoreAdj = &score
	p.NoNewPrivileges = b.sec.noNewPrivileges
	return nil
}

// Args merges the container's Entrypoint and Cmd with the image's, the way
// docker create does: a Config Entrypoint replaces the image's and, when the
// Config has no Cmd, also drops the image's Cmd; `--entrypoint ""` (sent as
// [""]) clears the entrypoint. It fails when nothing is left to run.
func Args(cfgEntrypoint, cfgCmd, imgEntrypoint, imgCmd []string) ([]string, error) {
	entrypoint, cmd := cfgEntrypoint, cfgCmd
	if len(entrypoint) == 0 {
		if len(cmd) == 0 {
			cmd = imgCmd
		}
		if entrypoint == nil {
			entrypoint = imgEntrypoint
		}
	}
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	args := make([]string, 0, len(entrypoint)+len(cmd))
	args = append(args, entrypoint...)
	args = append(args, cmd...)
	if len(args) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("no command specified"))
	}
	return args, nil
}

// Env builds the process environment as Docker does: PATH (default),
// HOSTNAME and, with a tty, TERM=xterm come first; then the container's
// variables followed by the image's that the container does not set, each
// replacing a default of the same name. A bare "NAME" (no '=') unsets NAME.
// HOME is appended from the user's passwd entry when nothing set it (runc
// does the same at exec time).
func Env(cfgEnv, imgEnv []string, hostname string, tty bool, home string) []string {
	env := []string{"PATH=" + DefaultPathEnv, "HOSTNAME=" + hostname}
	if tty {
		env = append(env, "TERM=xterm")
	}
	overrides := make([]string, 0, len(cfgEnv)+len(imgEnv))
	overrides = append(overrides, cfgEnv...)
	set := make(map[string]bool, len(cfgEnv))
	for _, e := range cfgEnv {
		set[envKey(e)] = true
	}
	for _, e := range imgEnv {
		if !set[envKey(e)] {
			overrides = append(overrides, e)
		}
	}

	index := make(map[string]int, len(env)+len(overrides))
	for i, e := range env {
		index[envKey(e)] = i
	}
	removed := map[int]bool{}
	for _, e := range overrides {
		k := envKey(e)
		i, exists := index[k]
		if !strings.Contains(e, "=") {
			if exists {
				removed[i] = true
			}
			continue
		}
		if exists {
			env[i] = e
			delete(removed, i)
			continue
		}
		index[k] = len(env)
		env = append(env, e)
	}
	out := env[:0]
	for i, e := range env {
		if !removed[i] {
			out = append(out, e)
		}
	}
	if _, ok := index["HOME"]; !ok && home != "" {
		out = append(out, "HOME="+home)
	}
	return out
}

func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

// resolveUser turns a Docker user spec (name, uid, name:group, uid:gid, ...)
// into the process user, reading /etc/passwd and /etc/group inside rootfs.
// The primary group comes first in the additional groups, then the user's
// supplementary groups, then --group-add, as Docker orders them. It also
// returns the user's home directory ("/" when unknown).
func resolveUser(rootfs, spec string, groupAdd []string) (specs.User, string, error) {
	var u specs.User
	passwdPath, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return u, "", fmt.Errorf("resolve /etc/passwd in %s: %w", rootfs, err)
	}
	groupPath, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return u, "", fmt.Errorf("resolve /etc/group in %s: %w", rootfs, err)
	}
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwdPath, groupPath)
	if err != nil {
		// Same wording as Docker: "unable to find user foo: no matching
		// entries in passwd file".
		return u, "", errdefs.InvalidParameter(err)
	}
	u.UID = uint32(eu.Uid)
	u.GID = uint32(eu.Gid)
	u.AdditionalGids = []uint32{u.GID}
	var added []int
	if len(groupAdd) > 0 {
		added, err = user.GetAdditionalGroupsPath(groupAdd, groupPath)
		if err != nil {
			return u, "", errdefs.InvalidParameter(err)
		}
		// the library collects them through a map: give a stable order
		slices.Sort(added)
	}
	seen := map[uint32]bool{u.GID: true}
	for _, g := range append(eu.Sgids, added...) {
		if !seen[uint32(g)] {
			seen[uint32(g)] = true
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	home := eu.Home
	if home == "" {
		home = "/"
	}
	return u, home, nil
}
