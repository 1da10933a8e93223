package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func newClient(t *testing.T, ts *testServer) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://"+ts.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestGoClientRunFlow drives the docker run sequence (create, attach,
// wait, start) and the read-only endpoints through the official Go client.
func TestGoClientRunFlow(t *testing.T) {
	ts := startServer(t)
	cli := newClient(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil || ping.APIVersion != "1.47" || ping.OSType != "linux" {
		t.Fatalf("ping: %+v %v", ping, err)
	}
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil || v.APIVersion != "1.47" {
		t.Fatalf("version: %+v %v", v, err)
	}
	if info, err := cli.Info(ctx, client.InfoOptions{}); err != nil || info.Info.Name != "fakehost" || info.Info.Swarm.LocalNodeState != "inactive" {
		t.Fatalf("info: %+v %v", info, err)
	}

	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "gorun",
		Config: &container.Config{Image: "docker.io/library/busybox", Cmd: []string{"echo", "from", "go"}, AttachStdout: true, AttachStderr: true},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Warnings == nil {
		t.Error("create Warnings decoded as nil; the server must send []")
	}
	att, err := cli.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer att.Close()
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatalf("demux: %v", err)
	}
	if stdout.String() != "from go\n" || stderr.Len() != 0 {
		t.Errorf("attach output %q / %q", stdout.String(), stderr.String())
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			t.Errorf("exit %d", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatalf("wait: %v", err)
	}
	if got := ts.fake.callLog(); strings.Join(got, ",") != "create,attach,wait,start" {
		t.Errorf("call order %v", got)
	}

	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil || len(list.Items) != 1 || list.Items[0].Names[0] != "/gorun" {
		t.Fatalf("list: %+v %v", list, err)
	}
	insp, err := cli.ContainerInspect(ctx, "gorun", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	c := insp.Container
	if c.Config == nil || c.HostConfig == nil || c.NetworkSettings == nil || c.State == nil || c.Name != "/gorun" {
		t.Errorf("inspect sub-objects must be present: %+v", c)
	}
	if _, err := cli.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{}); err == nil || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Errorf("inspect missing: %v", err)
	}
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil || len(imgs.Items) != 1 || imgs.Items[0].RepoTags[0] != "busybox:latest" {
		t.Errorf("images: %+v %v", imgs, err)
	}
}

func TestGoClientExec(t *testing.T) {
	ts := startServer(t)
	cli := newClient(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.createContainer(t, "ex", `{"Image":"busybox","Cmd":["sleep"]}`)
	if _, err := cli.ContainerStart(ctx, "ex", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(cmd []string, stdin string) (string, int) {
		t.Helper()
		ex, err := cli.ExecCreate(ctx, "ex", client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: stdin != ""})
		if err != nil {
			t.Fatalf("exec create: %v", err)
		}
		att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatalf("exec attach: %v", err)
		}
		defer att.Close()
		if stdin != "" {
			io.WriteString(att.Conn, stdin)
			att.CloseWrite()
		}
		var out bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
			t.Fatalf("exec demux: %v", err)
		}
		insp, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			t.Fatalf("exec inspect: %v", err)
		}
		return out.String(), insp.ExitCode
	}
	if out, code := run([]string{"echo", "in", "exec"}, ""); out != "in exec\n" || code != 0 {
		t.Errorf("exec echo: %q %d", out, code)
	}
	if out, code := run([]string{"cat"}, "abc\n"); out != "ABC\n" || code != 0 {
		t.Errorf("exec cat with stdin: %q %d", out, code)
	}
	if out, code := run([]string{"nosuchcmd"}, ""); !strings.Contains(out, "executable file not found") || !strings.HasSuffix(out, "\r\n") || code != 126 {
		t.Errorf("exec missing binary: %q %d", out, code)
	}
	// Detached start: 200 with an empty body, no hijack.
	code, _, body := ts.do(t, "POST", "/v1.47/containers/ex/exec", `{"Cmd":["echo","x"]}`)
	var idResp struct {
		ID string `json:"Id"`
	}
	jsonBody(t, body, &idResp)
	if code != 201 || idResp.ID == "" {
		t.Fatalf("exec create: %d %s", code, body)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/exec/"+idResp.ID+"/start", `{"Detach":true,"Tty":false}`); code != 200 || body != "" {
		t.Errorf("detached exec start: %d %q", code, body)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/exec/"+idResp.ID+"/resize?h=24&w=80", ""); code != 200 {
		t.Errorf("exec resize: %d", code)
	}
	if code, _, _ := ts.do(t, "GET", "/v1.47/exec/nosuch/json", ""); code != 404 {
		t.Errorf("exec inspect missing: %d", code)
	}
}

func TestEventsStreamImmediately(t *testing.T) {
	ts := startServer(t)
	req, _ := http.NewRequest("GET", "http://x/v1.47/events?filters=%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := ts.http.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err) // Do returns only once the headers arrived
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	id := ts.createContainer(t, "ev", `{"Image":"busybox"}`)
	dec := json.NewDecoder(resp.Body)
	var m struct {
		Type, Action string
		Actor        struct{ ID string }
		TimeNano     int64 `json:"timeNano"`
	}
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "container" || m.Action != "create" || m.Actor.ID != id || m.TimeNano == 0 {
		t.Errorf("event %+v", m)
	}

	// since/until in the past: past events, then the stream closes.
	now := time.Now()
	path := "/v1.47/events?since=" + itoa(now.Add(-time.Minute).Unix()) + "&until=" + itoa(now.Unix()+1)
	start := time.Now()
	code, _, body := ts.do(t, "GET", path, "")
	if code != 200 || !strings.Contains(body, `"Action":"create"`) || strings.Count(body, "\n") != 1 {
		t.Errorf("events since/until: %d %q", code, body)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("events with until took %v", time.Since(start))
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestStatsOneShotAndStream(t *testing.T) {
	ts := startServer(t)
	ts.createContainer(t, "st", `{"Image":"busybox","Cmd":["sleep"]}`)
	code, _, body := ts.do(t, "GET", "/v1.47/containers/st/stats?stream=0", "")
	if code != 200 || strings.Count(body, "\n") != 1 || !strings.Contains(body, `"name":"/st"`) {
		t.Errorf("stats stream=0: %d %q", code, body)
	}
	req, _ := http.NewRequest("GET", "http://x/v1.47/containers/st/stats", nil)
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(resp.Body)
	for i := 0; i < 3; i++ {
		var st container.StatsResponse
		if err := dec.Decode(&st); err != nil {
			t.Fatalf("stats sample %d: %v", i, err)
		}
	}
	resp.Body.Close()
	if code, _, _ := ts.do(t, "GET", "/v1.47/containers/nosuch/stats?stream=0", ""); code != 404 {
		t.Errorf("stats missing: %d", code)
	}
}

func TestUnimplementedAndFallThroughObjects(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/v1.47/networks", 200, `"Name":"bridge"`},
		{"GET", "/v1.47/networks/bridge", 200, `"Driver":"bridge"`},
		{"GET", "/v1.47/networks/nosuch", 404, "network nosuch not found"},
		{"POST", "/v1.47/networks/create", 501, "not implemented"},
		{"DELETE", "/v1.47/networks/x", 501, "not implemented"},
		{"GET", "/v1.47/volumes/nosuch", 404, "no such volume"},
		{"GET", "/v1.47/volumes", 200, `"Volumes":[]`},
		{"POST", "/v1.47/volumes/create", 201, `"Driver":"local"`},
		{"DELETE", "/v1.47/volumes/nosuch", 404, "get nosuch: no such volume"},
		{"POST", "/v1.47/volumes/prune", 200, `"VolumesDeleted":[`},
		{"GET", "/v1.47/plugins/nosuch/json", 404, `plugin \"nosuch\" not found`},
		{"POST", "/v1.47/build", 501, "not implemented"},
		{"GET", "/v1.47/swarm", 503, "not a swarm manager"},
		{"GET", "/v1.47/services", 503, "not a swarm manager"},
		{"GET", "/v1.47/containers/nosuch/archive?path=/", 404, "No such container"},
		{"GET", "/v1.47/system/df", 200, "LayersSize"},
		{"GET", "/v1.47/containers/x/top", 200, "Titles"},
		{"GET", "/v1.47/containers/x/changes", 200, `"Kind":1`},
		{"POST", "/v1.47/containers/prune", 200, "ContainersDeleted"},
		{"POST", "/v1.47/images/prune?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D", 200, "SpaceReclaimed"},
		{"POST", "/v1.47/containers/x/update", 200, "Warnings"},
	} {
		code, _, body := ts.do(t, tc.method, tc.path, "")
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: %d %q; want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.contains)
		}
	}
	ts.createContainer(t, "exp", `{"Image":"busybox"}`)
	code, hdr, body := ts.do(t, "GET", "/v1.47/containers/exp/export", "")
	if code != 200 || body != "EXPORT-TAR" || hdr.Get("Content-Type") != "application/x-tar" {
		t.Errorf("export: %d %q %v", code, body, hdr)
	}
	if code, _, _ := ts.do(t, "GET", "/v1.47/containers/nosuch/export", ""); code != 404 {
		t.Errorf("export missing: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/exp/rename?name=exp2", ""); code != 204 {
		t.Errorf("rename: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/exp2/resize?h=30&w=100", ""); code != 200 {
		t.Errorf("resize: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/exp2/resize?h=x&w=100", ""); code != 400 {
		t.Errorf("resize bad h: %d", code)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/exp2/kill", ""); code != 409 || !strings.Contains(body, "is not running") {
		t.Errorf("kill stopped: %d %q", code, body)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/exp2/stop?t=1", ""); code != 304 {
		t.Errorf("stop stopped: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/exp2/stop?t=x", ""); code != 400 {
		t.Errorf("stop bad t: %d", code)
	}
}

// TestKeepAliveAndConcurrency checks that plain requests reuse a connection
// and that many run concurrently while a wait is pending.
func TestKeepAliveAndConcurrency(t *testing.T) {
	ts := startServer(t)
	reused := 0
	for i := 0; i < 5; i++ {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequest("GET", "http://x/v1.47/containers/json", nil)
		resp, err := ts.http.Do(req.WithContext(httptrace.WithClientTrace(context.Background(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if reused != 4 {
		t.Errorf("keep-alive: %d of 4 requests reused the connection", reused)
	}
	ts.createContainer(t, "long", `{"Image":"busybox","Cmd":["sleep"]}`)
	waitDone := make(chan string, 1)
	go func() {
		_, _, body := ts.do(t, "POST", "/v1.47/containers/long/wait?condition=next-exit", "")
		waitDone <- body
	}()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, _ := ts.do(t, "GET", "/v1.47/containers/long/json", ""); code != 200 {
				t.Errorf("concurrent inspect: %d", code)
			}
		}()
	}
	wg.Wait()
	ts.do(t, "POST", "/v1.47/containers/long/start", "")
	ts.do(t, "POST", "/v1.47/containers/long/kill", "")
	select {
	case body := <-waitDone:
		if body != `{"StatusCode":137}`+"\n" {
			t.Errorf("wait body %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return")
	}
}

// TestShutdownEndsStreams checks that a pending events stream and a
// hijacked attach do not hold Shutdown up.
func TestShutdownEndsStreams(t *testing.T) {
	ts := startServer(t)
	req, _ := http.NewRequest("GET", "http://x/v1.47/events", nil)
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["sleep"]}`)
	_, br := ts.raw(t, attachReq("v1.47", id, "stdout=1&stream=1", true))
	readHead(t, br)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Logf("attach read after shutdown: %v", err)
	}
}
