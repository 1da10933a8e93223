package integration

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// These scenarios drive berth with Docker's official Go SDK, as programs
// (CI systems, testcontainers, IDEs) do.

func sdkClient(t *testing.T, e *env) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://"+e.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("SDK client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sdkContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSDKContainerLifecycle: create, start, wait, logs (demultiplexed),
// inspect, remove, and the 404 afterwards.
func TestSDKContainerLifecycle(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	name := uniq(t)

	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:  "busybox",
			Cmd:    []string{"sh", "-c", "echo out-$FOO; echo err-line >&2; echo out2; exit 3"},
			Env:    []string{"FOO=sdk"},
			Labels: map[string]string{"origin": "sdk"},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if len(created.ID) != 64 {
		t.Fatalf("create returned id %q", created.ID)
	}

	ins, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect before start: %v", err)
	}
	if c := ins.Container; c.ID != created.ID || c.Name != "/"+name || c.State.Status != container.StateCreated || c.Config.Labels["origin"] != "sdk" {
		t.Fatalf("inspect of a created container: id=%s name=%s status=%s labels=%v", c.ID, c.Name, c.State.Status, c.Config.Labels)
	}

	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 3 || res.Error != nil {
			t.Fatalf("wait: status %d, error %+v; want 3", res.StatusCode, res.Error)
		}
	case err := <-wait.Error:
		t.Fatalf("wait: %v", err)
	case <-ctx.Done():
		t.Fatal("wait: no result")
	}

	logs, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	var stdout, stderr bytes.Buffer
	_, err = stdcopy.StdCopy(&stdout, &stderr, logs)
	logs.Close()
	if err != nil {
		t.Fatalf("demultiplex logs: %v", err)
	}
	if stdout.String() != "out-sdk\nout2\n" || stderr.String() != "err-line\n" {
		t.Fatalf("logs: stdout %q stderr %q", stdout.String(), stderr.String())
	}

	// Only stderr, with timestamps.
	logs, err = cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStderr: true, Timestamps: true})
	if err != nil {
		t.Fatalf("logs stderr: %v", err)
	}
	stdout.Reset()
	stderr.Reset()
	_, err = stdcopy.StdCopy(&stdout, &stderr, logs)
	logs.Close()
	if err != nil || stdout.Len() != 0 {
		t.Fatalf("stderr-only logs: err %v, stdout %q", err, stdout.String())
	}
	ts, line, _ := strings.Cut(strings.TrimSpace(stderr.String()), " ")
	if _, perr := time.Parse(time.RFC3339Nano, ts); perr != nil || line != "err-line" {
		t.Fatalf("timestamped stderr %q: %v", stderr.String(), perr)
	}

	ins, err = cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect after exit: %v", err)
	}
	st := ins.Container.State
	if st.Status != container.StateExited || st.ExitCode != 3 || st.Running || st.FinishedAt == "" || st.Pid != 0 {
		t.Fatalf("state after exit: %+v", st)
	}

	if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect after remove: want not found, got %v", err)
	}
	if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("second remove: want not found, got %v", err)
	}
}

// TestSDKErrorClasses checks that the SDK sees the error classes programs
// branch on: not found, conflict, invalid argument.
func TestSDKErrorClasses(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)

	_, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "no-such-image-sdk:v1"}})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "no-such-image-sdk") {
		t.Fatalf("create from a missing image: want not found naming it, got %v", err)
	}
	if _, err := cli.ContainerStart(ctx, "no-such-container-sdk", client.ContainerStartOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("start of a missing container: want not found, got %v", err)
	}

	name := uniq(t)
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true}) })
	_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: "busybox"}})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "is already in use") {
		t.Fatalf("duplicate name: want conflict, got %v", err)
	}
	_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "bad/name!", Config: &container.Config{Image: "busybox"}})
	if !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("invalid name: want invalid argument, got %v", err)
	}
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("remove of a running container: want conflict, got %v", err)
	}
	if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("forced remove of a running container: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect after forced remove: want not found, got %v", err)
	}
}

// TestSDKLogsFollow follows a running container's logs through the SDK
// while it writes; the stream ends when the container exits.
func TestSDKLogsFollow(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   uniq(t),
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.2; done; echo bye >&2"}},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true}) })
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	logs, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		t.Fatalf("logs -f: %v", err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&stdout, &stderr, logs); done <- err }()
	select {
	case err := <-done:
		// The follow stream ends by itself when the container exits.
		if err != nil && err != io.EOF {
			t.Fatalf("follow: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f did not end when the container exited")
	}
	if stdout.String() != "tick1\ntick2\ntick3\n" || stderr.String() != "bye\n" {
		t.Fatalf("followed logs: stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
