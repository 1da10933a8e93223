package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestPingHeadHasNoBodyAndHeaders(t *testing.T) {
	ts := startServer(t)
	// HEAD then GET on one connection: if HEAD leaked a body, the second
	// status line would not start right after the first header block.
	_, br := ts.raw(t, "HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	head := readHead(t, br)
	for _, want := range []string{
		"HTTP/1.1 200 OK\r\n", "Api-Version: 1.47\r\n", "Docker-Experimental: false\r\n",
		"Ostype: linux\r\n", "Server: berth/test (linux)\r\n",
		"Cache-Control: no-cache, no-store, must-revalidate\r\n", "Pragma: no-cache\r\n", "Content-Length: 0\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("HEAD /_ping response lacks %q:\n%s", want, head)
		}
	}
	get := readHead(t, br)
	if !strings.HasPrefix(get, "HTTP/1.1 200 OK\r\n") || !strings.Contains(get, "Api-Version: 1.47\r\n") {
		t.Fatalf("GET /_ping after HEAD: %q", get)
	}
	body := make([]byte, 2)
	if _, err := io.ReadFull(br, body); err != nil || string(body) != "OK" {
		t.Fatalf("GET /_ping body %q, %v", body, err)
	}
}

func TestVersionRouting(t *testing.T) {
	ts := startServer(t)
	for _, p := range []string{"/version", "/v1.47/version", "/v1.24/version", "/v1.41/version", "/v1.47/_ping"} {
		if code, _, body := ts.do(t, "GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	code, hdr, body := ts.do(t, "GET", "/v1.50/version", "")
	if code != 400 || body != `{"message":"client version 1.50 is too new. Maximum supported API version is 1.47"}`+"\n" {
		t.Errorf("too new: %d %q", code, body)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("Api-Version") != "1.47" {
		t.Errorf("too new headers: %v", hdr)
	}
	if code, _, body := ts.do(t, "GET", "/v1.12/version", ""); code != 400 || !strings.Contains(body, "too old") {
		t.Errorf("too old: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "GET", "/v1.47/nothing/here", ""); code != 404 || body != `{"message":"page not found"}`+"\n" {
		t.Errorf("unknown path: %d %q", code, body)
	}
	var v struct{ APIVersion, MinAPIVersion string }
	_, _, body = ts.do(t, "GET", "/v1.47/version", "")
	jsonBody(t, body, &v)
	if v.APIVersion != "1.47" || v.MinAPIVersion != "1.24" {
		t.Errorf("version body %s", body)
	}
}

func TestErrorMappingAndNotModified(t *testing.T) {
	ts := startServer(t)
	code, hdr, body := ts.do(t, "GET", "/v1.47/containers/nosuch/json", "")
	if code != 404 || body != `{"message":"No such container: nosuch"}`+"\n" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("missing container: %d %q %v", code, body, hdr)
	}
	id := ts.createContainer(t, "sleeper", `{"Image":"busybox","Cmd":["sleep"]}`)
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/sleeper/start", ""); code != 204 || body != "" {
		t.Fatalf("start: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/"+id[:12]+"/start", ""); code != 304 || body != "" {
		t.Errorf("second start: want 304 with empty body, got %d %q", code, body)
	}
	if code, _, body := ts.do(t, "DELETE", "/v1.47/containers/sleeper", ""); code != 409 || !strings.Contains(body, "You cannot remove a running container") {
		t.Errorf("rm running: %d %q", code, body)
	}
	if code, _, _ := ts.do(t, "DELETE", "/v1.47/containers/sleeper?force=1&v=1", ""); code != 204 {
		t.Errorf("rm -f: %d", code)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/create", `{"Image":"nosuchimage"}`); code != 404 || !strings.Contains(body, "No such image") {
		t.Errorf("create with missing image: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/create", `{"Image":`); code != 400 {
		t.Errorf("bad JSON: %d %q", code, body)
	}
	if code, _, _ := ts.do(t, "PUT", "/v1.47/containers/json", ""); code != 405 {
		t.Errorf("wrong method: %d", code)
	}
}

func TestCreateAcceptsCLIBody(t *testing.T) {
	ts := startServer(t)
	// The body docker CLI 28.2.2 sent for `docker run -d -p 127.0.0.1:8080:80
	// -v ... -e A=b --memory 64m --cpus .5 busybox sleep 300` (captures/run-d.log).
	body := `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["sleep","300"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"apicap":"1"},"HostConfig":{"Binds":["/srv/apicap/vol:/data"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":67108864,"NanoCpus":500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null,"SomeFutureField":true},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}`
	code, _, out := ts.do(t, "POST", "/v1.47/containers/create?name=web", body)
	if code != 201 {
		t.Fatalf("create: %d %s", code, out)
	}
	if !strings.HasSuffix(out, `"Warnings":[]}`+"\n") {
		t.Errorf("Warnings must be [] not null: %s", out)
	}
	ts.fake.mu.Lock()
	c, _ := ts.fake.lookup("web")
	ts.fake.mu.Unlock()
	if c.hc.Memory != 67108864 || c.hc.NanoCPUs != 500000000 || len(c.hc.PortBindings) != 1 ||
		!reflect.DeepEqual(c.cfg.Cmd, []string{"sleep", "300"}) || c.hc.ConsoleSize != [2]uint{0, 0} {
		t.Errorf("decoded request lost fields: cfg=%+v hc=%+v", c.cfg, c.hc)
	}
}

func TestAttachHijack101AndFrames(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["echo","hi"]}`)
	conn, br := ts.raw(t, attachReq("v1.47", id, "stderr=1&stdout=1&stream=1", true))
	want := "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("101 bytes: %q, %v", got, err)
	}
	// As the CLI without -i: half-close right after the 101. Output must
	// still arrive.
	conn.CloseWrite()
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/"+id+"/start", ""); code != 204 {
		t.Fatalf("start: %d %s", code, body)
	}
	frames := readFrames(t, br)
	if !reflect.DeepEqual(frames, []string{"1:hi\n"}) {
		t.Errorf("frames %q", frames)
	}
}

func TestAttachStdinHalfClose(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["cat"],"OpenStdin":true}`)
	conn, br := ts.raw(t, attachReq("v1.47", id, "stdin=1&stdout=1&stderr=1&stream=1", true))
	if head := readHead(t, br); !strings.HasPrefix(head, "HTTP/1.1 101 UPGRADED\r\n") {
		t.Fatalf("head %q", head)
	}
	if code, _, _ := ts.do(t, "POST", "/v1.47/containers/"+id+"/start", ""); code != 204 {
		t.Fatalf("start: %d", code)
	}
	io.WriteString(conn, "line1\nline2\n")
	conn.CloseWrite()
	frames := readFrames(t, br)
	if strings.Join(frames, "") != "1:line1\nline2\n" {
		t.Errorf("frames %q", frames)
	}
}

func TestAttachWithoutUpgradeAnswers200(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["fail"]}`)
	_, br := ts.raw(t, attachReq("v1.47", id, "stderr=1&stdout=1&stream=1", false))
	head := readHead(t, br)
	if head != "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n" {
		t.Fatalf("head %q", head)
	}
	ts.do(t, "POST", "/v1.47/containers/"+id+"/start", "")
	if frames := readFrames(t, br); !reflect.DeepEqual(frames, []string{"2:oops\n"}) {
		t.Errorf("frames %q", frames)
	}
}

func TestAttachTTYIsRaw(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["echo","tty"],"Tty":true}`)
	_, br := ts.raw(t, attachReq("v1.47", id, "stdout=1&stream=1", true))
	readHead(t, br)
	ts.do(t, "POST", "/v1.47/containers/"+id+"/start", "")
	b, _ := io.ReadAll(br)
	if string(b) != "tty\n" {
		t.Errorf("tty stream %q", b)
	}
}

func TestWaitFlushesHeadersAtOnce(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["sleep"]}`)
	_, br := ts.raw(t, "POST /v1.47/containers/"+id+"/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	headCh := make(chan string, 1)
	go func() { headCh <- readHead(t, br) }()
	select {
	case head := <-headCh:
		if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "Transfer-Encoding: chunked") {
			t.Fatalf("wait head %q", head)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("wait headers were not flushed before the container exited")
	}
	ts.do(t, "POST", "/v1.47/containers/"+id+"/start", "")
	ts.do(t, "POST", "/v1.47/containers/"+id+"/stop", "")
	// Chunked body: size line, JSON, CRLF.
	line, _ := br.ReadString('\n')
	body, _ := br.ReadString('\n')
	if body != `{"StatusCode":137}`+"\n" {
		t.Errorf("wait body %q (chunk size line %q)", body, line)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/containers/nosuch/wait", ""); code != 404 {
		t.Errorf("wait on missing container: %d %s", code, body)
	}
}

func TestLogsFramesAndTTY(t *testing.T) {
	ts := startServer(t)
	id := ts.createContainer(t, "", `{"Image":"busybox","Cmd":["echo","hello"]}`)
	ts.do(t, "POST", "/v1.47/containers/"+id+"/start", "")
	waitStopped(t, ts, id)
	code, hdr, body := ts.do(t, "GET", "/v1.47/containers/"+id+"/logs?stdout=1&stderr=1&tail=all", "")
	if code != 200 || body != "\x01\x00\x00\x00\x00\x00\x00\x06hello\n" {
		t.Errorf("logs: %d %q", code, body)
	}
	if hdr.Get("Content-Type") != mediaMultiplexedStream {
		t.Errorf("logs content type %q", hdr.Get("Content-Type"))
	}
	if code, _, _ := ts.do(t, "GET", "/v1.47/containers/nosuch/logs?stdout=1", ""); code != 404 {
		t.Errorf("logs of missing: %d", code)
	}
	if code, _, _ := ts.do(t, "GET", "/v1.47/containers/"+id+"/logs", ""); code != 400 {
		t.Errorf("logs without streams: %d", code)
	}
}

func waitStopped(t *testing.T, ts *testServer, id string) {
	t.Helper()
	code, _, body := ts.do(t, "POST", "/v1.47/containers/"+id+"/wait", "")
	if code != 200 {
		t.Fatalf("wait: %d %s", code, body)
	}
}

func TestProgressStreams(t *testing.T) {
	ts := startServer(t)
	code, hdr, body := ts.do(t, "POST", "/v1.47/images/load?quiet=1", "TAR...")
	if code != 200 || body != `{"stream":"Loaded image: loaded:v1\n"}`+"\r\n" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("load: %d %q", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/load?quiet=1", "garbage")
	if code != 200 || body != `{"error":"Error processing tar file(exit status 1): unexpected EOF","errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"}}`+"\r\n" {
		t.Errorf("bad load: %d %q", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/create?fromSrc=-&repo=docker.io%2Fapicap%2Fimported%3Av1&message=m&changes=CMD+x&changes=LABEL+a%3D1", "TARimport")
	if code != 200 || !strings.HasPrefix(body, `{"status":"sha256:`) || !strings.HasSuffix(body, "\"}\r\n") {
		t.Errorf("import: %d %q", code, body)
	}
	if _, err := ts.fake.image("docker.io/apicap/imported:v1"); err != nil {
		t.Errorf("import did not split repo:tag: %v", err)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/create?fromSrc=-&repo=x%3Abad", "notatar")
	if code != 500 || body != `{"message":"Error processing tar file(exit status 1): unexpected EOF"}`+"\n" {
		t.Errorf("bad import: %d %q", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/create?fromImage=docker.io%2Flibrary%2Fnosuch&tag=v1", "")
	if code != 404 || !strings.Contains(body, "manifest unknown") {
		t.Errorf("pull missing: %d %q", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/create?fromImage=docker.io%2Flibrary%2Fbroken&tag=v1", "")
	lines := strings.SplitAfter(body, "\r\n")
	if code != 200 || len(lines) != 4 || !strings.Contains(lines[2], `"errorDetail":{"message":"unexpected EOF while pulling"}`) {
		t.Errorf("pull failing mid-stream: %d %q", code, body)
	}
	code, _, body = ts.do(t, "POST", "/v1.47/images/create?fromImage=docker.io%2Flibrary%2Falpine&tag=3", "")
	if code != 200 || !strings.Contains(body, "Downloaded newer image for alpine:3") {
		t.Errorf("pull: %d %q", code, body)
	}
}

func TestImageNamesWithSlashesAndColons(t *testing.T) {
	ts := startServer(t)
	if code, _, body := ts.do(t, "POST", "/v1.47/images/busybox:latest/tag?repo=127.0.0.1:5002/a/b&tag=t", ""); code != 201 || body != "" {
		t.Fatalf("tag: %d %q", code, body)
	}
	code, _, body := ts.do(t, "GET", "/v1.47/images/127.0.0.1:5002/a/b:t/json", "")
	if code != 200 || !strings.Contains(body, `"RepoTags":["127.0.0.1:5002/a/b:t"]`) {
		t.Errorf("inspect: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "GET", "/v1.47/images/127.0.0.1:5002/a/b:t/history", ""); code != 200 || !strings.HasPrefix(body, "[{") {
		t.Errorf("history: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/images/127.0.0.1:5002/a/b:t/push?tag=t", ""); code != 404 || !strings.Contains(body, "tag does not exist") {
		t.Errorf("push: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "GET", "/v1.47/images/127.0.0.1:5002/a/b:t/get", ""); code != 200 || body != "SAVED:127.0.0.1:5002/a/b:t" {
		t.Errorf("save one: %d %q", code, body)
	}
	code, hdr, body := ts.do(t, "GET", "/v1.47/images/get?names=busybox&names=127.0.0.1%3A5002%2Fa%2Fb%3At", "")
	if code != 200 || body != "SAVED:busybox,127.0.0.1:5002/a/b:t" || hdr.Get("Content-Type") != "application/x-tar" {
		t.Errorf("save many: %d %q", code, body)
	}
	if code, _, body := ts.do(t, "GET", "/v1.47/images/get?names=nosuch", ""); code != 404 || body != `{"message":"No such image: nosuch"}`+"\n" {
		t.Errorf("save missing: %d %q", code, body)
	}
	code, _, body = ts.do(t, "DELETE", "/v1.47/images/127.0.0.1:5002/a/b:t", "")
	if code != 200 || !strings.Contains(body, `{"Untagged":"127.0.0.1:5002/a/b:t"}`) {
		t.Errorf("rmi: %d %q", code, body)
	}
	if code, _, _ := ts.do(t, "GET", "/v1.47/images/json", ""); code != 200 {
		t.Errorf("images/json: %d", code)
	}
	if code, _, body := ts.do(t, "POST", "/v1.47/commit?container=x&repo=&tag=&changes=ENV+A%3D1", ""); code != 201 || !strings.HasPrefix(body, `{"Id":"sha256:`) {
		t.Errorf("commit: %d %q", code, body)
	}
}

func TestParseFilters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Filters
	}{
		{``, Filters{}},
		{`{"label":{"a=b":true},"dangling":{"true":true}}`, Filters{"label": {"a=b": true}, "dangling": {"true": true}}},
		{`{"name":["x","y"]}`, Filters{"name": {"x": true, "y": true}}},
		{`{"label":{"off":false}}`, Filters{"label": {}}},
	} {
		r, _ := http.NewRequest("GET", "/containers/json", nil)
		q := r.URL.Query()
		if tc.in != "" {
			q.Set("filters", tc.in)
		}
		r.URL.RawQuery = q.Encode()
		got, err := parseFilters(r)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFilters(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	r, _ := http.NewRequest("GET", "/containers/json?filters=%7Bnope", nil)
	if _, err := parseFilters(r); err == nil {
		t.Error("bad filters accepted")
	}
}

func TestQueryHelpers(t *testing.T) {
	r, _ := http.NewRequest("GET", "/x?a=1&b=0&c=true&d=false&e=&stream=0", nil)
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false, "e": false, "missing": false} {
		if got := boolValue(r, k); got != want {
			t.Errorf("boolValue(%s) = %v", k, got)
		}
	}
	if boolValueOr(r, "missing", true) != true || boolValueOr(r, "stream", true) != false {
		t.Error("boolValueOr")
	}
	ts, err := parseTimestamp("since", "1795827961.500000000")
	if err != nil || ts.Unix() != 1795827961 || ts.Nanosecond() != 500000000 {
		t.Errorf("parseTimestamp: %v %v", ts, err)
	}
	for ref, want := range map[string][2]string{
		"apicap/imported:v1":  {"apicap/imported", "v1"},
		"127.0.0.1:5000/x":    {"127.0.0.1:5000/x", ""},
		"127.0.0.1:5000/x:t":  {"127.0.0.1:5000/x", "t"},
		"x@sha256:abcd":       {"x@sha256:abcd", ""},
		"docker.io/library/x": {"docker.io/library/x", ""},
	} {
		if r, tg := splitRepoTag(ref); r != want[0] || tg != want[1] {
			t.Errorf("splitRepoTag(%s) = %s, %s", ref, r, tg)
		}
	}
}

func TestInspectLegacyNetworkFields(t *testing.T) {
	c := inspectCompat(&container.InspectResponse{ID: "abc", Name: "x"})
	c.NetworkSettings.Networks["bridge"] = &network.EndpointSettings{
		IPAddress: netip.MustParseAddr("172.17.0.2"), Gateway: netip.MustParseAddr("172.17.0.1"), IPPrefixLen: 16,
	}
	b, err := json.Marshal(inspectLegacy(c))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID              string `json:"Id"`
		Name            string
		Config          map[string]any
		NetworkSettings struct {
			IPAddress   string
			Gateway     string
			IPPrefixLen int
			Networks    map[string]map[string]any
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ns := m.NetworkSettings
	if m.ID != "abc" || m.Name != "/x" || m.Config == nil || ns.IPAddress != "172.17.0.2" || ns.Gateway != "172.17.0.1" ||
		ns.IPPrefixLen != 16 || ns.Networks["bridge"]["IPAddress"] != "172.17.0.2" {
		t.Errorf("legacy inspect JSON: %s", b)
	}
}
