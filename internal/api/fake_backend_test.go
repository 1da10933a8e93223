package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"

	"berth/internal/errdefs"
)

// fakeBackend is an in-memory Backend for the HTTP layer's tests. Its
// "processes" are a tiny interpreter of Cmd:
//
//	echo ARGS...  writes ARGS and "\n" to stdout, exits 0
//	fail          writes "oops\n" to stderr, exits 3
//	cat           copies stdin to stdout until EOF, exits 0
//	sleep         runs until stopped or killed (exit 137)
type fakeBackend struct {
	fakeVolumes
	mu         sync.Mutex
	containers map[string]*fakeContainer // by id
	execs      map[string]*fakeExec
	images     map[string]image.Summary // by familiar ref, "busybox:latest"
	events     []events.Message
	subs       []chan events.Message
	calls      []string // "create", "attach", "wait", "start" in arrival order
	resizes    []string
	panicInfo  bool // Info panics (TestHandlerPanicAnswers500)
}

type fakeLog struct {
	stream byte
	data   string
}

type fakeAttach struct {
	st   Streams
	done chan struct{}
}

type fakeContainer struct {
	id, name string
	cfg      *container.Config
	hc       *container.HostConfig
	created  time.Time
	running  bool
	exitCode int
	exited   chan struct{} // closed at the next exit, then replaced
	removed  chan struct{}
	stop     chan struct{}
	logs     []fakeLog
	attaches []*fakeAttach
	// pending counts attaches between their GetStreams (the 101, after
	// which the client may send start) and their registration; a start
	// waits for them so no output is lost.
	pending sync.WaitGroup
}

type fakeExec struct {
	id, container string
	cmd           []string
	tty           bool
	running       bool
	exitCode      int
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		containers: map[string]*fakeContainer{},
		execs:      map[string]*fakeExec{},
		images: map[string]image.Summary{
			"busybox:latest": {ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{"busybox:latest"},
				RepoDigests: []string{}, Created: 1700000000, Size: 1 << 20, Containers: -1, SharedSize: -1},
		},
	}
}

func fakeID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (f *fakeBackend) record(call string) {
	f.calls = append(f.calls, call)
}

func (f *fakeBackend) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) emit(c *fakeContainer, action string) {
	now := time.Now()
	m := events.Message{Type: events.ContainerEventType, Action: events.Action(action),
		Actor: events.Actor{ID: c.id, Attributes: map[string]string{"name": c.name, "image": c.cfg.Image}},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	f.events = append(f.events, m)
	for _, s := range f.subs {
		select {
		case s <- m:
		default:
		}
	}
}

// lookup resolves a name, full ID or unique ID prefix; f.mu is held.
func (f *fakeBackend) lookup(name string) (*fakeContainer, error) {
	name = strings.TrimPrefix(name, "/")
	var found *fakeContainer
	for _, c := range f.containers {
		if c.name == name || c.id == name {
			return c, nil
		}
		if strings.HasPrefix(c.id, name) {
			found = c
		}
	}
	if found != nil {
		return found, nil
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", name))
}

func normalizeRef(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	ref = strings.TrimPrefix(ref, "library/")
	if _, tag := splitRepoTag(ref); tag == "" {
		ref += ":latest"
	}
	return ref
}

func (f *fakeBackend) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create")
	if _, ok := f.images[normalizeRef(req.Image)]; !ok {
		return container.CreateResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", normalizeRef(req.Image)))
	}
	id := fakeID(fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if name == "" {
		name = "fake_" + id[:6]
	}
	for _, c := range f.containers {
		if c.name == name {
			return container.CreateResponse{}, errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, c.id))
		}
	}
	c := &fakeContainer{id: id, name: name, cfg: req.Config, hc: req.HostConfig, created: time.Now(),
		exited: make(chan struct{}), removed: make(chan struct{})}
	f.containers[id] = c
	f.emit(c, "create")
	var warnings []string // nil on purpose: the server must send []
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

func (f *fakeBackend) ContainerStart(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("start")
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	if c.running {
		return errdefs.NotModified(errors.New("container already started"))
	}
	c.running = true
	c.stop = make(chan struct{})
	f.emit(c, "start")
	if len(c.cfg.Cmd) > 0 && c.cfg.Cmd[0] == "/no/such/binary" {
		// As dockerd: the start fails, the container counts as exited
		// with 127, attached streams and waits end.
		close(c.stop)
		go f.run(c, c.stop)
		return errdefs.InvalidParameter(errors.New(`failed to create task: exec: "/no/such/binary": stat /no/such/binary: no such file or directory: unknown`))
	}
	go f.run(c, c.stop)
	return nil
}

// run interprets the container's command, writing to the attached streams.
func (f *fakeBackend) run(c *fakeContainer, stop chan struct{}) {
	c.pending.Wait()
	f.mu.Lock()
	atts := c.attaches
	c.attaches = nil
	f.mu.Unlock()
	out := func(stream byte, s string) {
		f.mu.Lock()
		c.logs = append(c.logs, fakeLog{stream, s})
		f.mu.Unlock()
		for _, a := range atts {
			w := a.st.Stdout
			if stream == 2 {
				w = a.st.Stderr
			}
			if w != nil {
				io.WriteString(w, s)
			}
		}
	}
	code := 0
	cmd := c.cfg.Cmd
	if len(cmd) == 0 {
		cmd = []string{"sleep"}
	}
	switch cmd[0] {
	case "echo":
		out(1, strings.Join(cmd[1:], " ")+"\n")
	case "fail":
		out(2, "oops\n")
		code = 3
	case "cat":
		for _, a := range atts {
			if a.st.Stdin != nil {
				b, _ := io.ReadAll(a.st.Stdin)
				a.st.Stdin.Close()
				out(1, string(b))
			}
		}
	case "/no/such/binary":
		code = 127
	default:
		<-stop
		code = 137
	}
	f.mu.Lock()
	c.running = false
	c.exitCode = code
	close(c.exited)
	c.exited = make(chan struct{})
	f.emit(c, "die")
	autoRemove := c.hc != nil && c.hc.AutoRemove
	f.mu.Unlock()
	for _, a := range atts {
		close(a.done)
	}
	if autoRemove {
		f.ContainerRemove(context.Background(), c.id, true, false)
	}
}

func (f *fakeBackend) ContainerStop(ctx context.Context, name string, signal string, timeout *int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !c.running {
		return errdefs.NotModified(errors.New("container already stopped"))
	}
	close(c.stop)
	return nil
}

func (f *fakeBackend) ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error {
	return f.ContainerStart(ctx, name)
}

func (f *fakeBackend) ContainerKill(ctx context.Context, name string, signal string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !c.running {
		return errdefs.Conflict(fmt.Errorf("Cannot kill container: %s: Container %s is not running", name, c.id))
	}
	if signal != "WINCH" {
		close(c.stop)
	}
	return nil
}

func (f *fakeBackend) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("wait")
	c, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	ch := make(chan container.WaitResponse, 1)
	if cond == container.WaitConditionNotRunning && !c.running {
		ch <- container.WaitResponse{StatusCode: int64(c.exitCode)}
		return ch, nil
	}
	until := c.exited
	if cond == container.WaitConditionRemoved {
		until = c.removed
	}
	go func() {
		select {
		case <-until:
			f.mu.Lock()
			code := c.exitCode
			f.mu.Unlock()
			ch <- container.WaitResponse{StatusCode: int64(code)}
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

func (f *fakeBackend) ContainerAttach(ctx context.Context, name string, opts AttachOptions) error {
	f.mu.Lock()
	f.record("attach")
	c, err := f.lookup(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	tty := c.cfg.Tty
	c.pending.Add(1)
	f.mu.Unlock()
	st, err := opts.GetStreams(tty)
	if err != nil {
		c.pending.Done()
		return err
	}
	if !opts.Stdout {
		st.Stdout = nil
	}
	if !opts.Stderr {
		st.Stderr = nil
	}
	a := &fakeAttach{st: st, done: make(chan struct{})}
	f.mu.Lock()
	c.attaches = append(c.attaches, a)
	f.mu.Unlock()
	c.pending.Done()
	select {
	case <-a.done:
	case <-ctx.Done():
	}
	return nil
}

func (f *fakeBackend) ContainerLogs(ctx context.Context, name string, opts LogsOptions) error {
	f.mu.Lock()
	c, err := f.lookup(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	logs := append([]fakeLog(nil), c.logs...)
	tty := c.cfg.Tty
	f.mu.Unlock()
	st, err := opts.GetStreams(tty)
	if err != nil {
		return err
	}
	if opts.Tail >= 0 && opts.Tail < len(logs) {
		logs = logs[len(logs)-opts.Tail:]
	}
	for _, l := range logs {
		w := st.Stdout
		if l.stream == 2 {
			if !opts.Stderr {
				continue
			}
			w = st.Stderr
		} else if !opts.Stdout {
			continue
		}
		if _, err := io.WriteString(w, l.data); err != nil {
			return err
		}
	}
	if opts.Follow {
		<-ctx.Done()
	}
	return nil
}

func (f *fakeBackend) ContainerResize(ctx context.Context, name string, height, width uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.lookup(name); err != nil {
		return err
	}
	f.resizes = append(f.resizes, fmt.Sprintf("%dx%d", height, width))
	return nil
}

func (f *fakeBackend) ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	if c.running && !force {
		return errdefs.Conflict(fmt.Errorf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.id))
	}
	if c.running {
		close(c.stop)
	}
	delete(f.containers, c.id)
	close(c.removed)
	f.emit(c, "destroy")
	return nil
}

func (f *fakeBackend) ContainerRename(ctx context.Context, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	c.name = strings.TrimPrefix(newName, "/")
	return nil
}

func (f *fakeBackend) ContainerPause(ctx context.Context, name string) error {
	return errdefs.NotImplemented(errors.New("pause"))
}

func (f *fakeBackend) ContainerUnpause(ctx context.Context, name string) error {
	return errdefs.NotImplemented(errors.New("unpause"))
}

func (f *fakeBackend) ContainerTop(ctx context.Context, name string, psArgs string) (container.TopResponse, error) {
	return container.TopResponse{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"1", "sleep"}}}, nil
}

func (f *fakeBackend) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	status := container.StateCreated
	if c.running {
		status = container.StateRunning
	} else if len(c.logs) > 0 || c.exitCode != 0 {
		status = container.StateExited
	}
	// Config left out on purpose: the server must fill sub-objects.
	resp := &container.InspectResponse{
		ID: c.id, Name: c.name, Created: c.created.Format(time.RFC3339Nano), Image: c.cfg.Image,
		State: &container.State{Status: status, Running: c.running, ExitCode: c.exitCode},
	}
	if c.cfg.Tty {
		resp.Config = &container.Config{Tty: true, Image: c.cfg.Image}
	}
	return resp, nil
}

func (f *fakeBackend) ContainerList(ctx context.Context, all bool, limit int, size bool, filters Filters) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for _, c := range f.containers {
		if !all && !c.running {
			continue
		}
		status := "Created"
		if c.running {
			status = "Up 2 seconds"
		}
		out = append(out, container.Summary{ID: c.id, Names: []string{c.name}, Image: c.cfg.Image,
			Command: strings.Join(c.cfg.Cmd, " "), Created: c.created.Unix(), Status: status,
			State: container.StateCreated})
	}
	return out, nil
}

func (f *fakeBackend) ContainerStats(ctx context.Context, name string, opts StatsOptions) error {
	f.mu.Lock()
	c, err := f.lookup(name)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		st := &container.StatsResponse{ID: c.id, Name: "/" + c.name, Read: time.Now()}
		st.MemoryStats.Usage = uint64(1000 + i)
		if err := opts.Out(st); err != nil {
			return err
		}
		if !opts.Stream {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *fakeBackend) ContainerUpdate(ctx context.Context, name string, update *container.UpdateConfig) (container.UpdateResponse, error) {
	return container.UpdateResponse{}, nil
}

func (f *fakeBackend) ContainerPrune(ctx context.Context, filters Filters) (*container.PruneReport, error) {
	return &container.PruneReport{ContainersDeleted: []string{}}, nil
}

func (f *fakeBackend) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	return []container.FilesystemChange{{Path: "/data", Kind: container.ChangeAdd}}, nil
}

// The fake's container file system holds one directory, /tmp, which
// ContainerArchivePath sends as "TAR" and ContainerExtractToDir drains into.
func (f *fakeBackend) fakePath(name, path string) (*container.PathStat, error) {
	f.mu.Lock()
	_, err := f.lookup(name)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if strings.TrimSuffix(path, "/") != "/tmp" {
		return nil, errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", path, name))
	}
	return &container.PathStat{Name: "tmp", Size: 4096, Mode: 1<<31 | 0o1777, Mtime: time.Unix(1700000000, 0).UTC()}, nil
}

func (f *fakeBackend) ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error) {
	return f.fakePath(name, path)
}

func (f *fakeBackend) ContainerArchivePath(ctx context.Context, name, path string, start func(*container.PathStat) error, w io.Writer) error {
	st, err := f.fakePath(name, path)
	if err != nil {
		return err
	}
	if err := start(st); err != nil {
		return err
	}
	_, err = io.WriteString(w, "TAR")
	return err
}

func (f *fakeBackend) ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, r io.Reader) error {
	if _, err := f.fakePath(name, path); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, r)
	return err
}

func (f *fakeBackend) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	f.mu.Lock()
	_, err := f.lookup(name)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "EXPORT-TAR")
	return err
}

func (f *fakeBackend) ExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(name)
	if err != nil {
		return "", err
	}
	if !c.running {
		return "", errdefs.Conflict(fmt.Errorf("Container %s is not running", c.id))
	}
	id := fakeID(fmt.Sprintf("exec-%d", time.Now().UnixNano()))
	f.execs[id] = &fakeExec{id: id, container: c.id, cmd: req.Cmd, tty: req.Tty}
	return id, nil
}

func (f *fakeBackend) ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error {
	f.mu.Lock()
	e, ok := f.execs[execID]
	f.mu.Unlock()
	if !ok {
		return errdefs.NotFound(fmt.Errorf("No such exec instance: %s", execID))
	}
	st, err := opts.GetStreams(e.tty)
	if err != nil {
		return err
	}
	code := 0
	var runErr error
	switch e.cmd[0] {
	case "echo":
		io.WriteString(st.Stdout, strings.Join(e.cmd[1:], " ")+"\n")
	case "cat":
		if st.Stdin != nil {
			b, _ := io.ReadAll(st.Stdin)
			st.Stdin.Close()
			io.WriteString(st.Stdout, strings.ToUpper(string(b)))
		}
	default:
		code = 126
		runErr = fmt.Errorf("OCI runtime exec failed: exec failed: exec: %q: executable file not found in $PATH: unknown", e.cmd[0])
	}
	f.mu.Lock()
	e.exitCode = code
	f.mu.Unlock()
	return runErr
}

func (f *fakeBackend) ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.execs[execID]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("No such exec instance: %s", execID))
	}
	code := e.exitCode
	return &container.ExecInspectResponse{ID: e.id, ContainerID: e.container, ExitCode: &code,
		ProcessConfig: &container.ExecProcessConfig{Entrypoint: e.cmd[0], Arguments: e.cmd[1:], Tty: e.tty}}, nil
}

func (f *fakeBackend) ExecResize(ctx context.Context, execID string, height, width uint) error {
	return nil
}

func (f *fakeBackend) image(name string) (image.Summary, error) {
	img, ok := f.images[normalizeRef(name)]
	if !ok {
		for _, i := range f.images {
			if strings.HasPrefix(strings.TrimPrefix(i.ID, "sha256:"), name) || i.ID == name {
				return i, nil
			}
		}
		return image.Summary{}, errdefs.NotFound(fmt.Errorf("No such image: %s", name))
	}
	return img, nil
}

func (f *fakeBackend) ImageList(ctx context.Context, all bool, filters Filters) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []image.Summary
	for _, i := range f.images {
		out = append(out, i)
	}
	return out, nil
}

func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.image(name)
	if err != nil {
		return nil, err
	}
	return &image.InspectResponse{ID: img.ID, RepoTags: img.RepoTags, Size: img.Size, Os: "linux", Architecture: "amd64"}, nil
}

func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.image(name)
	if err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{{ID: img.ID, Created: img.Created, CreatedBy: "/bin/sh", Tags: img.RepoTags, Size: img.Size}}, nil
}

func (f *fakeBackend) ImageTag(ctx context.Context, source, repo, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.image(source)
	if err != nil {
		return err
	}
	if tag == "" {
		tag = "latest"
	}
	ref := normalizeRef(repo + ":" + tag)
	img.RepoTags = []string{ref}
	f.images[ref] = img
	return nil
}

func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.image(name)
	if err != nil {
		return nil, err
	}
	delete(f.images, normalizeRef(name))
	return []image.DeleteResponse{{Untagged: normalizeRef(name)}, {Deleted: img.ID}}, nil
}

func (f *fakeBackend) ImageLoad(ctx context.Context, r io.Reader, quiet bool, out Progress) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), "TAR") {
		return errors.New("Error processing tar file(exit status 1): unexpected EOF")
	}
	return out.WriteMessage(JSONMessage{Stream: "Loaded image: loaded:v1\n"})
}

func (f *fakeBackend) ImageSave(ctx context.Context, names []string, w io.Writer) error {
	f.mu.Lock()
	for _, n := range names {
		if _, err := f.image(n); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	f.mu.Unlock()
	_, err := io.WriteString(w, "SAVED:"+strings.Join(names, ","))
	return err
}

func (f *fakeBackend) ImageImport(ctx context.Context, r io.Reader, repo, tag, message string, changes []string, out Progress) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), "TAR") {
		return errors.New("Error processing tar file(exit status 1): unexpected EOF")
	}
	id := "sha256:" + fakeID(string(b))
	f.mu.Lock()
	f.images[normalizeRef(repo+":"+tag)] = image.Summary{ID: id, RepoTags: []string{repo + ":" + tag}}
	f.mu.Unlock()
	return out.WriteMessage(JSONMessage{Status: id})
}

func (f *fakeBackend) ImagePrune(ctx context.Context, filters Filters) (*image.PruneReport, error) {
	return &image.PruneReport{}, nil
}

func (f *fakeBackend) ImagePull(ctx context.Context, ref, tag, platform string, authHeader string, out Progress) error {
	if strings.Contains(ref, "nosuch") {
		return errdefs.NotFound(fmt.Errorf("manifest for %s:%s not found: manifest unknown: manifest unknown", ref, tag))
	}
	if tag == "" {
		tag = "latest"
	}
	out.WriteMessage(JSONMessage{Status: "Pulling from " + ref, ID: tag})
	out.WriteMessage(JSONMessage{Status: "Pull complete", ID: "0123456789ab"})
	if strings.Contains(ref, "broken") {
		return errors.New("unexpected EOF while pulling")
	}
	ref = normalizeRef(ref + ":" + tag)
	f.mu.Lock()
	f.images[ref] = image.Summary{ID: "sha256:" + fakeID(ref), RepoTags: []string{ref}}
	f.mu.Unlock()
	return out.WriteMessage(JSONMessage{Status: "Status: Downloaded newer image for " + ref})
}

func (f *fakeBackend) Commit(ctx context.Context, ctr, repo, tag, author, comment string, changes []string, pause bool) (string, error) {
	return "sha256:" + fakeID(ctr+repo+tag), nil
}

func (f *fakeBackend) Info(ctx context.Context) (*system.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicInfo {
		panic("fake backend: Info exploded")
	}
	return &system.Info{ID: "fake", Name: "fakehost", Containers: len(f.containers), Images: len(f.images),
		ServerVersion: "0.0-fake", Driver: "overlay2", OSType: "linux", Architecture: "x86_64",
		OperatingSystem: "FakeOS", NCPU: 2, MemTotal: 1 << 30, DockerRootDir: "/var/lib/berth"}, nil
}

func (f *fakeBackend) Version(ctx context.Context) (*system.VersionResponse, error) {
	return &system.VersionResponse{Version: "0.0-fake", Os: "linux", Arch: "amd64", GoVersion: "go1.26",
		Components: []system.ComponentVersion{{Name: "Engine", Version: "0.0-fake"}}}, nil
}

func (f *fakeBackend) Events(ctx context.Context, since, until time.Time, filters Filters) ([]events.Message, <-chan events.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range f.events {
			if !time.Unix(0, m.TimeNano).Before(since) {
				past = append(past, m)
			}
		}
	}
	ch := make(chan events.Message, 64)
	f.subs = append(f.subs, ch)
	out := make(chan events.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-ch:
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return past, out, nil
}

func (f *fakeBackend) DiskUsage(ctx context.Context) (*system.DiskUsage, error) {
	return &system.DiskUsage{}, nil
}
