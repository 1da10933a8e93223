package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Image is an image as the builder sees it: an ID ("" for scratch) and
// its container config.
type Image struct {
	ID     string
	Config dockerspec.DockerOCIImageConfig
}

// Step describes the image a build step produces: its parent, its config
// and its history entry.
type Step struct {
	Parent    string // "" for scratch
	Config    dockerspec.DockerOCIImageConfig
	CreatedBy string
	Created   time.Time // zero: now
	Author    string    // from MAINTAINER
	// Mounts are a RUN step's extra mounts (RUN --mount): the engine
	// adds them to the container, and their contents stay out of the
	// committed layer.
	Mounts []mount.Mount
}

// Backend is what the builder needs from the engine.
type Backend interface {
	// ResolveImage finds the image a FROM names.
	ResolveImage(ctx context.Context, ref string) (Image, error)
	// Run runs run.Cmd in a container of step.Parent, writing its output
	// to out, and commits the container's changes as step's image. A
	// non-zero exit is an *ExitError.
	Run(ctx context.Context, step Step, run *container.Config, out io.Writer) (string, error)
	// Apply creates step's image from its parent plus the layer tar (nil:
	// no layer, a metadata-only step).
	Apply(ctx context.Context, step Step, layer io.Reader) (string, error)
	// Mount makes an image's root filesystem readable at the returned
	// directory until release is called.
	Mount(ctx context.Context, id string) (dir string, release func(), err error)
}

// Cache maps a step's cache key to the image it produced.
type Cache interface {
	Lookup(key string) (id string, ok bool)
	Store(key, id string)
}

// ExitError is a RUN step whose command failed.
type ExitError struct {
	Cmd  []string
	Code int
}

// ExitCode is the command's exit code, the CLI's exit code for the build.
func (e *ExitError) ExitCode() int { return e.Code }

func (e *ExitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// Options are the parameters of one build.
type Options struct {
	// ContextDir holds the build context; COPY sources are read from it.
	ContextDir string
	// Ignore reports whether a context path (slash-separated, relative)
	// is excluded by .dockerignore; nil excludes nothing.
	Ignore    func(rel string) bool
	BuildArgs map[string]*string
	Labels    map[string]string
	NoCache   bool
	Target    string
	// Out receives the progress lines and the RUN output; nil discards.
	Out io.Writer
	// CacheMountRoot holds the directories of RUN --mount=type=cache,
	// one per cache id, kept between builds; "" refuses cache mounts.
	CacheMountRoot string
	// Secrets maps a secret id to the host file RUN --mount=type=secret
	// mounts; secrets never enter a layer or the cache key.
	Secrets map[string]string
	// Explain prints, for each step that misses the cache, the first
	// input that differs from the last build of that step.
	Explain bool
	// Parallel builds independent stages at the same time; Backend and
	// Cache must then be safe for concurrent use.
	Parallel bool
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stageState is one stage in progress.
type stageState struct {
	img      Image
	args     map[string]string // ARGs declared in this stage
	argOrder []string
	cmdSet   bool
	author   string
}

type builder struct {
	be      Backend
	cache   Cache
	opts    Options
	out     io.Writer
	lex     *shell.Lex
	escape  rune
	meta    map[string]string // meta ARG values, for FROM
	stages  map[string]string // stage name or index -> image ID
	created time.Time
	step    int
	total   int
	// pending are the inputs of the step being keyed, for Explain;
	// pendingFiles are a COPY's file hashes, set just before key().
	pending      pendingInputs
	pendingFiles []string
}

type pendingInputs struct {
	text   string
	inputs []string
}

// Build executes df and returns the final image's ID.
func Build(ctx context.Context, be Backend, cache Cache, df *Dockerfile, opts Options) (string, error) {
	b := &builder{be: be, cache: cache, opts: opts, out: opts.Out, lex: shell.NewLex(df.Escape), escape: df.Escape,
		meta: map[string]string{}, stages: map[string]string{}}
	if b.out == nil {
		b.out = io.Discard
	}
	if df.Syntax != "" {
		fmt.Fprintf(b.out, "Note: # syntax=%s is ignored: berth builds with its built-in Dockerfile frontend\n", df.Syntax)
	}
	if v := opts.BuildArgs["SOURCE_DATE_EPOCH"]; v != nil {
		sec, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: %w", *v, err)
		}
		b.created = time.Unix(sec, 0).UTC()
	}
	for k, v := range platformArgs() {
		b.meta[k] = v
	}
	for _, a := range df.MetaArgs {
		for _, kv := range a.Args {
			v := ""
			if kv.Value != nil {
				ev, _, err := b.lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(envList(b.meta)))
				if err != nil {
					return "", err
				}
				v = ev
			} else if pv, ok := b.meta[kv.Key]; ok {
				v = pv // a predefined platform ARG keeps its value
			}
			if o, ok := opts.BuildArgs[kv.Key]; ok && o != nil {
				v = *o
			}
			b.meta[kv.Key] = v
		}
	}
	if err := checkCycles(df.Stages, b.meta, b.lex); err != nil {
		return "", err
	}
	last := len(df.Stages) - 1
	if opts.Target != "" {
		last = -1
		for i, s := range df.Stages {
			if strings.EqualFold(s.Name, opts.Target) {
				last = i
			}
		}
		if last < 0 {
			return "", fmt.Errorf("failed to reach build target %s in Dockerfile", opts.Target)
		}
	}
	// Only the stages the target needs, the independent ones in parallel
	// with Options.Parallel (stages.go).
	ids, err := b.buildStages(ctx, df.Stages, neededStages(stageDeps(df.Stages, b.meta, b.lex), last))
	if err != nil {
		return "", err
	}
	id := ids[last]
	if len(opts.Labels) > 0 {
		st := &stageState{}
		var err error
		if st.img, err = be.ResolveImage(ctx, id); err != nil {
			return "", err
		}
		cfg := cloneConfig(st.img.Config)
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, opts.Labels)
		if err := b.commitConfig(ctx, st, cfg, "LABEL "+labelString(opts.Labels), false); err != nil {
			return "", err
		}
		id = st.img.ID
	}
	return id, nil
}

// checkCycles rejects stages that depend on each other through FROM or
// COPY --from. Naming a later stage without a cycle keeps the classic
// meaning (an image of that name); a cycle can only be a mistake.
func checkCycles(stages []instructions.Stage, meta map[string]string, lex *shell.Lex) error {
	index := map[string][]int{}
	for i, s := range stages {
		if s.Name != "" {
			// docker's classic builder and BuildKit both refuse to name
			// two stages alike: a reference could not tell them apart.
			if len(index[strings.ToLower(s.Name)]) > 0 {
				return fmt.Errorf("%s stage name already used", s.Name)
			}
			index[strings.ToLower(s.Name)] = append(index[strings.ToLower(s.Name)], i)
		}
	}
	// A name means the latest stage of that name before i, else the first
	// one at or after i.
	resolve := func(i int, name string) (int, bool) {
		js := index[strings.ToLower(name)]
		best := -1
		for _, j := range js {
			if j < i {
				best = j
			}
		}
		if best < 0 && len(js) > 0 {
			best = js[0]
		}
		return best, best >= 0
	}
	deps := make([][]int, len(stages))
	for i, s := range stages {
		refs := []string{s.BaseName}
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				refs = append(refs, cp.From)
			}
		}
		for _, r := range refs {
			if v, _, err := lex.ProcessWord(r, shell.EnvsFromSlice(envList(meta))); err == nil {
				r = v
			}
			if j, ok := resolve(i, r); ok {
				deps[i] = append(deps[i], j)
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(stages))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case visiting:
			return fmt.Errorf("circular dependency detected on stage: %s", stages[i].Name)
		case done:
			return nil
		}
		state[i] = visiting
		for _, j := range deps[i] {
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = done
		return nil
	}
	for i := range stages {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

func labelString(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, strconv.Quote(k)+"="+strconv.Quote(l[k]))
	}
	return strings.Join(parts, " ")
}

func (b *builder) printStep(text string) {
	b.step++
	fmt.Fprintf(b.out, "Step %d/%d : %s\n", b.step, b.total, text)
}

func (b *builder) buildStage(ctx context.Context, s instructions.Stage) (string, error) {
	b.printStep(s.SourceCode)
	id, err := b.stageFrom(ctx, s)
	return id, located(err, b.step, s.SourceCode, s.Location)
}

// stageFrom runs s from its FROM on; an error not yet located is FROM's
// (an ONBUILD trigger runs at its child's FROM).
func (b *builder) stageFrom(ctx context.Context, s instructions.Stage) (string, error) {
	if err := b.checkPlatform(s.Platform); err != nil {
		return "", err
	}
	base, _, err := b.lex.ProcessWord(s.BaseName, shell.EnvsFromSlice(envList(b.meta)))
	if err != nil {
		return "", fmt.Errorf("FROM %s: %w", s.BaseName, err)
	}
	st := &stageState{args: map[string]string{}}
	switch {
	case strings.EqualFold(base, "scratch"):
		st.img = Image{Config: dockerspec.DockerOCIImageConfig{}}
		st.img.Config.Env = []string{defaultPath}
	case b.stages[strings.ToLower(base)] != "":
		if st.img, err = b.be.ResolveImage(ctx, b.stages[strings.ToLower(base)]); err != nil {
			return "", err
		}
	default:
		if st.img, err = b.be.ResolveImage(ctx, base); err != nil {
			return "", err
		}
	}
	if st.img.ID != "" {
		fmt.Fprintf(b.out, " ---> %s\n", short(st.img.ID))
	} else {
		fmt.Fprintf(b.out, " ---> \n")
	}
	if err := b.runTriggers(ctx, st); err != nil {
		return "", err
	}
	for _, cmd := range s.Commands {
		b.printStep(cmdText(cmd))
		if err := b.dispatch(ctx, st, cmd); err != nil {
			return "", located(err, b.step, cmdText(cmd), cmd.Location())
		}
		if st.img.ID != "" {
			fmt.Fprintf(b.out, " ---> %s\n", short(st.img.ID))
		}
	}
	if st.img.ID == "" {
		// A stage of only FROM scratch: docker refuses it too.
		return "", fmt.Errorf("no image was generated. Is your Dockerfile empty?")
	}
	return st.img.ID, nil
}

// runTriggers runs the base image's ONBUILD instructions right after
// FROM, as docker does; the triggers are not inherited further.
func (b *builder) runTriggers(ctx context.Context, st *stageState) error {
	triggers := st.img.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	st.img.Config = cloneConfig(st.img.Config)
	st.img.Config.OnBuild = nil
	word := "trigger"
	if len(triggers) > 1 {
		word = "triggers"
	}
	fmt.Fprintf(b.out, "# Executing %d build %s\n", len(triggers), word)
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(res.AST.Children) != 1 {
			return fmt.Errorf("parse ONBUILD trigger %q: %v", t, err)
		}
		cmd, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			return fmt.Errorf("parse ONBUILD trigger %q: %w", t, err)
		}
		switch strings.ToUpper(cmd.Name()) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(cmd.Name()))
		}
		if err := b.dispatch(ctx, st, cmd); err != nil {
			return fmt.Errorf("ONBUILD trigger %q: %w", t, err)
		}
		if st.img.ID != "" {
			fmt.Fprintf(b.out, " ---> %s\n", short(st.img.ID))
		}
	}
	return nil
}

func cmdText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// env returns the variables visible to expansion: the stage's ARGs under
// its ENV (ENV wins, as in docker).
func (st *stageState) env() []string {
	out := make([]string, 0, len(st.args)+len(st.img.Config.Env))
	for _, k := range st.argOrder {
		out = append(out, k+"="+st.args[k])
	}
	return append(out, st.img.Config.Env...)
}

func envList(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func (b *builder) expander(st *stageState) instructions.SingleWordExpander {
	env := shell.EnvsFromSlice(st.env())
	return func(word string) (string, error) {
		v, _, err := b.lex.ProcessWord(word, env)
		return v, err
	}
}

func (b *builder) dispatch(ctx context.Context, st *stageState, cmd instructions.Command) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(b.expander(st)); err != nil {
			return fmt.Errorf("%s: %w", cmdText(cmd), err)
		}
	}
	if err := b.expandRaw(st, cmd); err != nil {
		return fmt.Errorf("%s: %w", cmdText(cmd), err)
	}
	cfg := cloneConfig(st.img.Config)
	text := cmdText(cmd)
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v := ""
			if kv.Value != nil {
				v = *kv.Value
			} else if mv, ok := b.meta[kv.Key]; ok {
				v = mv
			}
			if o, ok := b.opts.BuildArgs[kv.Key]; ok && o != nil {
				v = *o
			}
			if _, seen := st.args[kv.Key]; !seen {
				st.argOrder = append(st.argOrder, kv.Key)
			}
			st.args[kv.Key] = v
		}
		return nil
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer // the image's author; the config is unchanged
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		ex := b.expander(st)
		for _, p := range c.Ports {
			p, err := ex(p)
			if err != nil {
				return err
			}
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		dir := c.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
		return b.workdir(ctx, st, cfg, text)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.CmdCommand:
		cfg.Cmd = b.cmdLine(cfg, c.ShellDependantCmdLine)
		st.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = b.cmdLine(cfg, c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
	case *instructions.ShellCommand:
		cfg.Shell = c.Shell
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.RunCommand:
		return b.run(ctx, st, c)
	case *instructions.CopyCommand:
		return b.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod, text: text, inline: c.SourceContents,
			parents: c.Parents, excludes: c.ExcludePatterns, link: c.Link})
	case *instructions.AddCommand:
		return b.copy(ctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, text: text, add: true, inline: c.SourceContents,
			checksum: c.Checksum, keepGitDir: c.KeepGitDir != nil && *c.KeepGitDir, excludes: c.ExcludePatterns, link: c.Link, unpack: c.Unpack})
	default:
		return fmt.Errorf("%s is not supported by this builder", strings.ToUpper(cmd.Name()))
	}
	return b.commitConfig(ctx, st, cfg, text, true)
}

func (b *builder) cmdLine(cfg dockerspec.DockerOCIImageConfig, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return c.CmdLine
	}
	return append(shellOf(cfg), strings.Join(c.CmdLine, " "))
}

func shellOf(cfg dockerspec.DockerOCIImageConfig) []string {
	if len(cfg.Shell) > 0 {
		return slices.Clone(cfg.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// commitConfig produces a metadata-only image (no layer).
func (b *builder) commitConfig(ctx context.Context, st *stageState, cfg dockerspec.DockerOCIImageConfig, text string, cacheable bool) error {
	step := b.newStep(st, cfg, "/bin/sh -c #(nop)  "+text)
	key := b.key(st, text)
	if cacheable && b.cached(st, key) {
		return nil
	}
	id, err := b.be.Apply(ctx, step, nil)
	if err != nil {
		return err
	}
	b.remember(st, key, id, cfg)
	return nil
}

func (b *builder) newStep(st *stageState, cfg dockerspec.DockerOCIImageConfig, createdBy string) Step {
	return Step{Parent: st.img.ID, Config: cfg, CreatedBy: createdBy, Created: b.created, Author: st.author}
}

// key is the cache key of a step: its parent, the instruction, the
// visible environment and whatever extra content (COPY sources) it reads.
func (b *builder) key(st *stageState, text string, extra ...string) string {
	b.pending = pendingInputs{text: text, inputs: b.stepInputs(st, text, b.pendingFiles)}
	b.pendingFiles = nil
	h := sha256.New()
	fmt.Fprintf(h, "parent %s\ninstr %s\ncreated %d\n", st.img.ID, text, b.created.Unix())
	env := st.env()
	sort.Strings(env)
	for _, e := range env {
		fmt.Fprintf(h, "env %s\n", e)
	}
	for _, e := range extra {
		fmt.Fprintf(h, "content %s\n", e)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cached switches st to the cached image for key, if there is one.
func (b *builder) cached(st *stageState, key string) bool {
	if b.cache == nil || b.opts.NoCache {
		b.explainMiss(b.pending.text, b.pending.inputs) // says --no-cache
		return false
	}
	id, ok := b.cache.Lookup(key)
	if !ok {
		b.explainMiss(b.pending.text, b.pending.inputs)
		return false
	}
	img, err := b.be.ResolveImage(context.Background(), id)
	if err != nil {
		b.explainMiss(b.pending.text, b.pending.inputs)
		return false
	}
	fmt.Fprintf(b.out, " ---> Using cache\n")
	b.rememberInputs(b.pending.text, b.pending.inputs) // the latest build of the step
	st.img = img
	return true
}

func (b *builder) remember(st *stageState, key, id string, cfg dockerspec.DockerOCIImageConfig) {
	if b.cache != nil {
		b.cache.Store(key, id)
	}
	b.rememberInputs(b.pending.text, b.pending.inputs)
	st.img = Image{ID: id, Config: cfg}
}

func (b *builder) run(ctx context.Context, st *stageState, c *instructions.RunCommand) error {
	if f, ok := mountFlagsOnly(c); !ok {
		return fmt.Errorf("RUN --%s is not supported by this builder", f)
	}
	if st.img.ID == "" {
		return fmt.Errorf("RUN in a stage FROM scratch with no files: there is no shell to run %q", strings.Join(c.CmdLine, " "))
	}
	hargs, hmounts, hkey, hclean, err := heredocRun(c)
	if err != nil {
		return err
	}
	defer hclean()
	line := c.ShellDependantCmdLine
	line.CmdLine = hargs
	if heredocExec(hargs) {
		line.PrependShell = false
	}
	argv := b.cmdLine(st.img.Config, line)
	text := cmdText(c)
	var extra []string
	if hkey != "" {
		extra = append(extra, hkey)
	}
	key := b.key(st, text, extra...)
	if b.cached(st, key) {
		return nil
	}
	// The build args are visible to the command but not kept in the image.
	runEnv := slices.Clone(st.img.Config.Env)
	for _, k := range st.argOrder {
		if !hasEnv(runEnv, k) {
			runEnv = append(runEnv, k+"="+st.args[k])
		}
	}
	// The predefined proxy args reach RUN without an ARG line.
	for _, k := range predefinedArgs {
		if v := b.opts.BuildArgs[k]; v != nil && !hasEnv(runEnv, k) {
			runEnv = append(runEnv, k+"="+*v)
		}
	}
	run := &container.Config{
		Cmd:        argv,
		Entrypoint: []string{},
		Env:        runEnv,
		WorkingDir: st.img.Config.WorkingDir,
		User:       st.img.Config.User,
	}
	cfg := cloneConfig(st.img.Config)
	createdBy := strings.Join(argv, " ")
	if c.PrependShell {
		createdBy = strings.Join(shellOf(cfg), " ") + " " + strings.Join(c.CmdLine, " ")
	}
	mounts, release, err := b.runMounts(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	step := b.newStep(st, cfg, createdBy)
	step.Mounts = append(mounts, hmounts...)
	id, err := b.be.Run(ctx, step, run, b.out)
	if err != nil {
		return err
	}
	b.remember(st, key, id, cfg)
	return nil
}

// predefinedArgs are the build args docker accepts without an ARG line;
// they are passed to RUN but, like all args, never kept in the image.
var predefinedArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, k, v string) []string {
	out := slices.Clone(env)
	for i, e := range out {
		if strings.HasPrefix(e, k+"=") {
			out[i] = k + "=" + v
			return out
		}
	}
	return append(out, k+"="+v)
}

func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Shell = slices.Clone(c.Shell)
	c.OnBuild = slices.Clone(c.OnBuild)
	c.Labels = maps.Clone(c.Labels)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	return c
}
