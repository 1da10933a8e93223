package api

import (
	"context"
	"io"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// Filters is the decoded `filters=` query parameter: a map of sets,
// e.g. {"label":{"a=b":true}}.
type Filters map[string]map[string]bool

// Streams is what the API layer hands the backend once it knows whether the
// process has a terminal: stdin (nil when not attached) and the two output
// writers. Without a terminal the writers produce the 8-byte multiplexed
// frames; with one they are the same raw writer.
type Streams struct {
	Stdin  io.ReadCloser
	Stdout io.Writer
	Stderr io.Writer
}

// GetStreams is called by the backend exactly once, as soon as it has
// resolved the container or exec and knows whether it has a terminal. For
// hijacked requests this is when the API layer answers 101; it must happen
// before the process starts (docker run sends start only after the 101).
// The client may send start the moment GetStreams returns, so the backend
// must already have registered the attachment by then (or make start wait
// for it), or the first output is lost.
//
// Stdin returns io.EOF on the client's CloseWrite; output keeps flowing. The
// ctx of ContainerAttach/ExecStart is not cancelled by that EOF, only by
// server shutdown; a client that went away shows as a write error.
type GetStreams func(tty bool) (Streams, error)

// AttachOptions are the query parameters of POST /containers/{id}/attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	DetachKeys            string
	GetStreams            GetStreams
}

// LogsOptions are the query parameters of GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // -1: all
	GetStreams     GetStreams
}

// ExecStartOptions is the body of POST /exec/{id}/start plus the streams.
type ExecStartOptions struct {
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint
	GetStreams  GetStreams
}

// StatsOptions are the query parameters of GET /containers/{id}/stats.
type StatsOptions struct {
	Stream  bool
	OneShot bool
	// Out receives each sample; an error from it ends the stream.
	Out func(*container.StatsResponse) error
}

// Progress receives JSON-stream messages (pull/load/import/build output).
// The API layer encodes each one as a line of the response.
type Progress interface {
	WriteMessage(JSONMessage) error
}

// JSONMessage is one message of a progress stream (§3.3 of the contract).
type JSONMessage struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ID             string          `json:"id,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ProgressDetail *ProgressDetail `json:"progressDetail,omitempty"`
	Aux            any             `json:"aux,omitempty"`
	Error          string          `json:"error,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
}

// ProgressDetail is the numeric part of a progress message.
type ProgressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail is an in-stream error; Code becomes the CLI's exit code.
type ErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// ExtractOptions are the query parameters of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID owns the extracted files by the container's user instead
	// of the uid/gid in the tar.
	CopyUIDGID bool
}

// ContainerBackend is the container half of what the Engine API needs.
// Names are as the user typed them: a name (with or without "/"), a full
// ID or a unique ID prefix. Errors are classified with internal/errdefs.
type ContainerBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, name string) error
	ContainerStop(ctx context.Context, name string, signal string, timeout *int) error
	ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error
	ContainerKill(ctx context.Context, name string, signal string) error
	// ContainerWait resolves the container and registers the waiter, and
	// must return promptly: its error (e.g. NotFound) becomes the response
	// status. The channel yields once the container is in the state the
	// condition names. The API layer flushes the 200 headers as soon as
	// ContainerWait returns (after 200ms at the latest, so a slow backend
	// cannot deadlock docker run) and writes the value as the body; ctx
	// ends when the client goes away (run -d drops the wait).
	ContainerWait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error)
	ContainerAttach(ctx context.Context, name string, opts AttachOptions) error
	ContainerLogs(ctx context.Context, name string, opts LogsOptions) error
	ContainerResize(ctx context.Context, name string, height, width uint) error
	ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error
	ContainerRename(ctx context.Context, name, newName string) error
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	ContainerTop(ctx context.Context, name string, psArgs string) (container.TopResponse, error)
	ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	ContainerList(ctx context.Context, all bool, limit int, size bool, filters Filters) ([]container.Summary, error)
	ContainerStats(ctx context.Context, name string, opts StatsOptions) error
	ContainerUpdate(ctx context.Context, name string, update *container.UpdateConfig) (container.UpdateResponse, error)
	ContainerPrune(ctx context.Context, filters Filters) (*container.PruneReport, error)
	ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error)
	ContainerExport(ctx context.Context, name string, w io.Writer) error
	// ContainerStatPath stats path inside the container (HEAD .../archive);
	// the last symlink is not followed.
	ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error)
	// ContainerArchivePath writes the tar of path (GET .../archive) to w,
	// calling start with the path's stat before the first byte, so the API
	// layer can send the stat header or an error status.
	ContainerArchivePath(ctx context.Context, name, path string, start func(*container.PathStat) error, w io.Writer) error
	// ContainerExtractToDir extracts the tar read from r into the existing
	// directory path (PUT .../archive).
	ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, r io.Reader) error

	ExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error
}

// ImageBackend is the image half.
type ImageBackend interface {
	ImageList(ctx context.Context, all bool, filters Filters) ([]image.Summary, error)
	ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
	// ImageTag tags source as repo:tag; repo may be normalised
	// (docker.io/library/x) and is stored in its familiar form.
	ImageTag(ctx context.Context, source, repo, tag string) error
	ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error)
	ImageLoad(ctx context.Context, r io.Reader, quiet bool, out Progress) error
	ImageSave(ctx context.Context, names []string, w io.Writer) error
	ImageImport(ctx context.Context, r io.Reader, repo, tag, message string, changes []string, out Progress) error
	ImagePrune(ctx context.Context, filters Filters) (*image.PruneReport, error)
	// ImagePull serves POST /images/create?fromImage=; it may answer
	// errdefs.NotImplemented until the registry client lands.
	ImagePull(ctx context.Context, ref, tag, platform string, authHeader string, out Progress) error
	// ImagePush serves POST /images/{name}/push?tag=; no tag pushes every
	// tag of the repository.
	ImagePush(ctx context.Context, name, tag, authHeader string, out Progress) error
	// RegistryLogin serves POST /auth: it checks the credentials against
	// the registry.
	RegistryLogin(ctx context.Context, auth registry.AuthConfig) (registry.AuthResponse, error)
	// DistributionInspect serves GET /distribution/{name}/json: the
	// descriptor name resolves to on its registry and its platforms.
	DistributionInspect(ctx context.Context, name, authHeader string) (*registry.DistributionInspect, error)
	Commit(ctx context.Context, container, repo, tag, author, comment string, changes []string, pause bool) (string, error)
	// Build serves POST /build (the classic builder): buildContext is the
	// context tar. A Dockerfile that does not parse is an InvalidParameter
	// error returned before any message; later failures are returned after
	// messages were written and become in-stream errors (a failing RUN
	// carries its exit code: see BuildExitCoder).
	Build(ctx context.Context, buildContext io.Reader, opts BuildOptions, out Progress) error
	// BuildCachePrune serves POST /build/prune: it drops build cache
	// records and deletes the step images nothing else holds.
	BuildCachePrune(ctx context.Context, opts BuildPruneOptions) (*buildtypes.CachePruneReport, error)
}

// BuildOptions are the query parameters of POST /build.
type BuildOptions struct {
	Tags       []string           // t=, repeated
	Dockerfile string             // relative to the context; "" is Dockerfile
	BuildArgs  map[string]*string // buildargs=
	Labels     map[string]string  // labels=
	NoCache    bool
	Quiet      bool // q=1: only the final ID is reported
	Target     string
	Remove     bool // rm (default true): remove intermediate containers
	ForceRm    bool // forcerm: remove them even after a failure
	Pull       bool
	// Secrets (id -> contents) and Explain come from berth build's
	// request headers (build.SecretsHeader, build.ExplainHeader).
	Secrets map[string][]byte
	Explain bool
	// Locate asks for the failed step's place in the Dockerfile, as an
	// aux message before the error (build.LocateHeader).
	Locate bool
	// NetworkMode is the RUN containers' network (networkmode=): ""
	// or "default" for the default bridge, "none", "host", a network.
	NetworkMode string
	// RegistryConfig is the X-Registry-Config header as sent: base64url
	// JSON of registry host -> AuthConfig, used for the build's pulls.
	RegistryConfig string
}

// BuildExitCoder is implemented by a build error that carries the exit
// code of a failed RUN; the in-stream errorDetail.code is set from it.
type BuildExitCoder interface {
	ExitCode() int
}

// SystemBackend serves /info, /version, /events and /system/df.
type SystemBackend interface {
	Info(ctx context.Context) (*system.Info, error)
	Version(ctx context.Context) (*system.VersionResponse, error)
	// Events returns past events in [since, until] and, when until is
	// zero or in the future, a channel of new ones closed when ctx ends.
	Events(ctx context.Context, since, until time.Time, filters Filters) ([]events.Message, <-chan events.Message, error)
	DiskUsage(ctx context.Context) (*system.DiskUsage, error)
}

// VolumeBackend serves /volumes. Errors: NotFound "get N: no such volume",
// Conflict when a container uses the volume.
type VolumeBackend interface {
	VolumeCreate(ctx context.Context, req *volume.CreateRequest) (*volume.Volume, error)
	VolumeList(ctx context.Context, filters Filters) ([]volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volume.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	// VolumePrune removes unused anonymous volumes, or every unused one
	// with the filter all=true.
	VolumePrune(ctx context.Context, filters Filters) (*volume.PruneReport, error)
}

// Backend is everything the Engine API server needs from the daemon.
type Backend interface {
	ContainerBackend
	ImageBackend
	SystemBackend
	VolumeBackend
}
