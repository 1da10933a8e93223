package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

const testID = "a1a8786f58eca6081e60f5032e56a3d10e4bf41802c9cebc249a6a3debfdd8ed"

// runCmd executes one berth command line against the fake daemon.
func runCmd(t *testing.T, d *fakeDaemon, stdin string, args ...string) (string, string, int) {
	t.Helper()
	c, out, errOut := d.cli(stdin)
	root := &cobra.Command{Use: "berth", SilenceErrors: true, SilenceUsage: true}
	addCommandsTo(root, c)
	root.SetArgs(args)
	root.SetContext(context.Background())
	code := executeTo(root, errOut)
	return out.String(), errOut.String(), code
}

// containerLifecycle scripts a container that prints and exits with code:
// attach streams the frames once start has been called.
func containerLifecycle(d *fakeDaemon, frames []byte, code int) {
	started := make(chan struct{})
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"Id": testID, "Warnings": []string{}})
	})
	d.handle("POST /containers/"+testID+"/attach", func(w http.ResponseWriter, r *http.Request) {
		hijack(w, func(conn net.Conn, rw *bufio.ReadWriter) {
			<-started
			_, _ = rw.Write(frames)
			_ = rw.Flush()
		})
	})
	d.handle("POST /containers/"+testID+"/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-started
		time.Sleep(10 * time.Millisecond)
		_, _ = io.WriteString(w, `{"Error":null,"StatusCode":`+strconv.Itoa(code)+"}\n")
	})
	d.handle("POST /containers/"+testID+"/start", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestRunSequenceAndExitCode(t *testing.T) {
	d := newFakeDaemon(t)
	containerLifecycle(d, append(frame(1, "hi\n"), frame(2, "oops\n")...), 42)
	out, errOut, code := runCmd(t, d, "", "run", "--rm", "busybox", "sh", "-c", "echo hi; exit 42")
	if code != 42 {
		t.Fatalf("exit code = %d, want 42 (stderr %q)", code, errOut)
	}
	if out != "hi\n" || errOut != "oops\n" {
		t.Fatalf("stdout %q stderr %q, want demultiplexed hi/oops", out, errOut)
	}
	want := []string{
		"POST /containers/create",
		"POST /containers/" + testID + "/attach",
		"POST /containers/" + testID + "/wait",
		"POST /containers/" + testID + "/start",
	}
	if got := d.calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests = %v\nwant %v", got, want)
	}
	wait, _ := d.request("POST /containers/" + testID + "/wait")
	if wait.Query != "condition=removed" {
		t.Errorf("wait query = %q, want condition=removed for --rm", wait.Query)
	}
	attach, _ := d.request("POST /containers/" + testID + "/attach")
	if attach.Query != "stderr=1&stdout=1&stream=1" {
		t.Errorf("attach query = %q", attach.Query)
	}
}

func TestRunDetachedPrintsID(t *testing.T) {
	d := newFakeDaemon(t)
	containerLifecycle(d, nil, 0)
	out, errOut, code := runCmd(t, d, "", "run", "-d", "busybox", "sleep", "300")
	if code != 0 || out != testID+"\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	want := []string{"POST /containers/create", "POST /containers/" + testID + "/wait", "POST /containers/" + testID + "/start"}
	if got := d.calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests = %v, want %v", got, want)
	}
	wait, _ := d.request("POST /containers/" + testID + "/wait")
	if wait.Query != "condition=next-exit" {
		t.Errorf("wait query = %q", wait.Query)
	}
}

func TestRunInteractiveSendsStdinThenCloseWrite(t *testing.T) {
	d := newFakeDaemon(t)
	got := make(chan string, 1)
	started := make(chan struct{})
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"Id": testID})
	})
	d.handle("POST /containers/"+testID+"/attach", func(w http.ResponseWriter, r *http.Request) {
		hijack(w, func(conn net.Conn, rw *bufio.ReadWriter) {
			<-started
			// cat: echo stdin back until the client half-closes.
			data, _ := io.ReadAll(rw)
			got <- string(data)
			_, _ = rw.Write(frame(1, string(data)))
			_ = rw.Flush()
		})
	})
	d.handle("POST /containers/"+testID+"/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-started
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(w, `{"StatusCode":0}`+"\n")
	})
	d.handle("POST /containers/"+testID+"/start", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		w.WriteHeader(http.StatusNoContent)
	})
	out, errOut, code := runCmd(t, d, "line1\nline2\n", "run", "-i", "--rm", "busybox", "cat")
	if code != 0 {
		t.Fatalf("code %d err %q", code, errOut)
	}
	if s := <-got; s != "line1\nline2\n" {
		t.Fatalf("daemon got stdin %q", s)
	}
	if out != "line1\nline2\n" {
		t.Fatalf("stdout %q", out)
	}
	attach, _ := d.request("POST /containers/" + testID + "/attach")
	if !strings.Contains(attach.Query, "stdin=1") {
		t.Errorf("attach query %q lacks stdin=1", attach.Query)
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	d := newFakeDaemon(t)
	containerLifecycle(d, nil, 0)
	creates := 0
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		creates++
		if creates == 1 {
			writeError(w, http.StatusNotFound, "No such image: busybox:latest")
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"Id": testID})
	})
	d.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"Pulling from library/busybox","id":"latest"}`+"\r\n"+
			`{"status":"Pulling fs layer","progressDetail":{},"id":"d8a56b0f959e"}`+"\r\n"+
			`{"status":"Downloading","progressDetail":{"current":10,"total":20},"progress":"[==>  ]","id":"d8a56b0f959e"}`+"\r\n"+
			`{"status":"Pull complete","progressDetail":{},"id":"d8a56b0f959e"}`+"\r\n"+
			`{"status":"Status: Downloaded newer image for busybox:latest"}`+"\r\n")
	})
	_, errOut, code := runCmd(t, d, "", "run", "-d", "busybox")
	if code != 0 {
		t.Fatalf("code %d err %q", code, errOut)
	}
	want := "Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\nd8a56b0f959e: Pulling fs layer\nd8a56b0f959e: Pull complete\nStatus: Downloaded newer image for busybox:latest\n"
	if errOut != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
	pull, _ := d.request("POST /images/create")
	if pull.Query != "fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest" {
		t.Errorf("pull query = %q", pull.Query)
	}
}

func TestRunPullFailureExits125(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such image: nope:v9")
	})
	d.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotImplemented, "pull is not implemented")
	})
	_, errOut, code := runCmd(t, d, "", "run", "--rm", "nope:v9")
	want := "Unable to find image 'nope:v9' locally\nberth: Error response from daemon: pull is not implemented\n\nRun 'berth run --help' for more information\n"
	if code != 125 || errOut != want {
		t.Fatalf("code %d stderr %q\nwant %q", code, errOut, want)
	}
}

func TestRunPullNeverDoesNotPull(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such image: nope:v9")
	})
	_, errOut, code := runCmd(t, d, "", "run", "--pull=never", "nope:v9")
	if code != 125 || !strings.HasPrefix(errOut, "berth: Error response from daemon: No such image: nope:v9") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	if calls := d.calls(); len(calls) != 1 {
		t.Fatalf("requests %v, want only create", calls)
	}
}

func TestRunStartFailureExitCodes(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
	}{
		{`exec: "/no/such/binary": stat /no/such/binary: no such file or directory`, 127},
		{`exec: "/etc/passwd": permission denied`, 126},
		{"network nosuchnet not found", 125},
	} {
		d := newFakeDaemon(t)
		containerLifecycle(d, nil, 127)
		d.handle("POST /containers/"+testID+"/start", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusBadRequest, tc.msg)
		})
		d.handle("POST /containers/"+testID+"/wait", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"StatusCode":127}`+"\n")
		})
		_, errOut, code := runCmd(t, d, "", "run", "--rm", "busybox", "/no/such/binary")
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.msg, code, tc.code)
		}
		want := "berth: Error response from daemon: " + tc.msg + "\n\nRun 'berth run --help' for more information\n"
		if errOut != want {
			t.Errorf("stderr %q, want %q", errOut, want)
		}
	}
}

func TestRunWaitErrorExits125(t *testing.T) {
	d := newFakeDaemon(t)
	containerLifecycle(d, nil, 0)
	d.handle("POST /containers/"+testID+"/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"Error":{"Message":"boom"},"StatusCode":9}`+"\n")
	})
	_, errOut, code := runCmd(t, d, "", "run", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "Error waiting for container: boom") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}

func TestRunWarningsPrinted(t *testing.T) {
	d := newFakeDaemon(t)
	containerLifecycle(d, nil, 0)
	d.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"Id": testID, "Warnings": []string{"kernel lacks swap limit"}})
	})
	_, errOut, _ := runCmd(t, d, "", "create", "busybox")
	if errOut != "WARNING: kernel lacks swap limit\n" {
		t.Fatalf("stderr %q", errOut)
	}
}

func TestToStatusError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New(`exec: "x": executable file not found in $PATH`), 127},
		{errors.New("open /x: no such file or directory"), 127},
		{errors.New("exec /etc: is a directory"), 126},
		{errors.New("permission denied"), 126},
		{errors.New("Conflict. The container name is already in use"), 125},
	} {
		var se StatusError
		if !errors.As(toStatusError(tc.err, "run"), &se) || se.StatusCode != tc.code {
			t.Errorf("%v: status %d, want %d", tc.err, se.StatusCode, tc.code)
		}
		if !strings.HasPrefix(se.Status, "berth: ") || !strings.HasSuffix(se.Status, "Run 'berth run --help' for more information") {
			t.Errorf("status text %q", se.Status)
		}
	}
}

func TestExecExitCode(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("GET /containers/c1/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"Id": testID, "State": map[string]any{"Running": true}, "Config": map[string]any{}})
	})
	d.handle("POST /containers/c1/exec", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"Id": "e1"})
	})
	d.handle("POST /exec/e1/start", func(w http.ResponseWriter, r *http.Request) {
		hijack(w, func(conn net.Conn, rw *bufio.ReadWriter) {
			_, _ = rw.Write(frame(1, "out\n"))
			_ = rw.Flush()
		})
	})
	d.handle("GET /exec/e1/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ID": "e1", "Running": false, "ExitCode": 3})
	})
	out, errOut, code := runCmd(t, d, "", "exec", "-e", "Z=1", "-w", "/tmp", "c1", "sh", "-c", "exit 3")
	if code != 3 || out != "out\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	create, _ := d.request("POST /containers/c1/exec")
	for _, want := range []string{`"Env":["Z=1"]`, `"WorkingDir":"/tmp"`, `"Cmd":["sh","-c","exit 3"]`, `"AttachStdout":true`} {
		if !strings.Contains(string(create.Body), want) {
			t.Errorf("exec create body %s lacks %s", create.Body, want)
		}
	}
}

func TestLogsDemuxAndQuery(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("GET /containers/web/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"Id": testID, "Config": map[string]any{"Tty": false}})
	})
	d.handle("GET /containers/"+testID+"/logs", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(append(frame(1, "a\n"), frame(2, "b\n")...))
	})
	out, errOut, code := runCmd(t, d, "", "logs", "--tail", "5", "-t", "web")
	if code != 0 || out != "a\n" || errOut != "b\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	logs, _ := d.request("GET /containers/" + testID + "/logs")
	if logs.Query != "stderr=1&stdout=1&tail=5&timestamps=1" {
		t.Errorf("logs query %q", logs.Query)
	}
}

func TestMultiTargetStopPrintsAndFails(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("POST /containers/a/stop", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	d.handle("POST /containers/b/stop", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such container: b")
	})
	d.handle("POST /containers/c/stop", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	out, errOut, code := runCmd(t, d, "", "stop", "-t", "1", "a", "b", "c")
	if code != 1 || out != "a\nc\n" || errOut != "Error response from daemon: No such container: b\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	stop, _ := d.request("POST /containers/a/stop")
	if stop.Query != "t=1" {
		t.Errorf("stop query %q, want t=1", stop.Query)
	}
}

func TestRmForceIgnoresMissing(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("DELETE /containers/gone", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such container: gone")
	})
	out, errOut, code := runCmd(t, d, "", "rm", "-f", "gone")
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = runCmd(t, d, "", "rm", "gone")
	if code != 1 || errOut != "Error response from daemon: No such container: gone\n" {
		t.Fatalf("code %d err %q", code, errOut)
	}
}

func TestStartFailureMessage(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("POST /containers/x/start", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such container: x")
	})
	_, errOut, code := runCmd(t, d, "", "start", "x")
	want := "Error response from daemon: No such container: x\nError: failed to start containers: x\n"
	if code != 1 || errOut != want {
		t.Fatalf("code %d err %q", code, errOut)
	}
}

func TestInspectFallThrough(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("GET /containers/busybox/json", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such container: busybox")
	})
	d.handle("GET /images/busybox/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"Id": "sha256:abc", "Config": map[string]any{"Env": []string{"A=b"}}})
	})
	d.handle("GET /*", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	out, _, code := runCmd(t, d, "", "inspect", "-f", "{{.Id}} {{.Config.Env}}", "busybox")
	if code != 0 || out != "sha256:abc [A=b]\n" {
		t.Fatalf("code %d out %q", code, out)
	}
	out, errOut, code := runCmd(t, d, "", "inspect", "nothing")
	if code != 1 || out != "[]\n" || errOut != "Error: No such object: nothing\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	out, _, _ = runCmd(t, d, "", "image", "inspect", "busybox")
	if !strings.HasPrefix(out, "[\n    {\n        \"Config\": {") {
		t.Fatalf("inspect JSON layout:\n%s", out)
	}
}

func TestInspectNon404StopsChain(t *testing.T) {
	d := newFakeDaemon(t)
	d.handle("GET /containers/x/json", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, "boom")
	})
	_, errOut, code := runCmd(t, d, "", "inspect", "x")
	if code != 1 || errOut != "Error response from daemon: boom\n" {
		t.Fatalf("code %d err %q", code, errOut)
	}
	if calls := d.calls(); len(calls) != 1 {
		t.Fatalf("requests %v: a 500 must stop the fall-through", calls)
	}
}

func TestRunTTYWithoutTerminal(t *testing.T) {
	d := newFakeDaemon(t)
	_, errOut, code := runCmd(t, d, "x\n", "run", "-it", "busybox")
	if code != 1 || errOut != "the input device is not a TTY\n" {
		t.Fatalf("code %d err %q", code, errOut)
	}
	if calls := d.calls(); len(calls) != 0 {
		t.Fatalf("no request may be sent: %v", calls)
	}
	_, errOut, code = runCmd(t, d, "", "run", "--pull=sometimes", "busybox")
	if code != 125 || !strings.HasPrefix(errOut, `berth: invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`) {
		t.Fatalf("code %d err %q", code, errOut)
	}
}
