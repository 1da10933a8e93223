package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"
)

// The docker CLI 28.2.2 against berth for issue 6's volume, mount and
// disk-usage verbs: volume create/ls/inspect/rm with their bad input (and
// the HTTP status codes behind the CLI's messages), volume events, copy-up
// at create, --mount bind/tmpfs, system df and system prune.

// api sends one Engine API request to the daemon and returns the status
// and body: the CLI shows only the message, the tests also check the code.
func (e *env) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDockerVolumeVerbs(t *testing.T) {
	e := daemonEnv(t)
	vol := uniq(t)
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", vol) })
	if r := must(t, e.docker(t, "volume", "create", "--label", "tier=db", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=2m", vol)); r.stdout != vol+"\n" {
		t.Fatalf("volume create printed %q", r.stdout)
	}
	// create of an existing name with no options returns it unchanged
	must(t, e.docker(t, "volume", "create", vol))
	if r := must(t, e.docker(t, "volume", "ls", "--filter", "name="+vol, "--format", "{{.Name}} {{.Driver}} {{.Labels}}")); r.stdout != vol+" local tier=db\n" {
		t.Fatalf("volume ls: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "volume", "ls", "-q", "--filter", "label=tier=db")); !strings.Contains(r.stdout, vol+"\n") {
		t.Fatalf("volume ls --filter label: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "volume", "ls", "-q", "--filter", "label=tier=web")); strings.Contains(r.stdout, vol) {
		t.Fatalf("volume ls --filter label=tier=web lists %s: %q", vol, r.stdout)
	}
	got := must(t, e.docker(t, "volume", "inspect", "-f", "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Labels.tier}}|{{.Options.type}}|{{.Options.o}}|{{.Mountpoint}}", vol)).stdout
	want := fmt.Sprintf("%s|local|local|db|tmpfs|size=2m|%s\n", vol, filepath.Join(e.dataRoot, "volumes", vol, "_data"))
	if got != want {
		t.Fatalf("volume inspect:\n got %q\nwant %q", got, want)
	}
	// the tmpfs option is real: 2 MiB inside a container
	if r := must(t, e.docker(t, "run", "--rm", "-v", vol+":/t", "busybox", "sh", "-c", "df -k /t | tail -1")); !strings.Contains(r.stdout, " 2048 ") {
		t.Fatalf("df of the tmpfs volume: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "volume", "rm", vol)); r.stdout != vol+"\n" {
		t.Fatalf("volume rm printed %q", r.stdout)
	}
	if r := e.docker(t, "volume", "inspect", vol); r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
		t.Fatalf("inspect after rm: %s", r)
	}
	if _, err := os.Stat(filepath.Join(e.dataRoot, "volumes", vol)); !os.IsNotExist(err) {
		t.Fatalf("volume rm left its directory: %v", err)
	}
	if r := e.docker(t, "volume", "rm", vol); r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
		t.Fatalf("rm of a missing volume: %s", r)
	}
	must(t, e.docker(t, "volume", "rm", "-f", vol))
}

func TestDockerVolumeBadInput(t *testing.T) {
	e := daemonEnv(t)
	vol, ctr := uniq(t), uniq(t)+"-c"
	t.Cleanup(func() { e.docker(t, "rm", "-f", ctr); e.docker(t, "volume", "rm", "-f", vol) })
	must(t, e.docker(t, "volume", "create", vol))
	id := strings.TrimSpace(must(t, e.docker(t, "create", "--name", ctr, "-v", vol+":/d", "busybox", "true")).stdout)

	// in use, even by a container that never ran: 409, docker's message
	msg := fmt.Sprintf("remove %s: volume is in use - [%s]", vol, id)
	if r := e.docker(t, "volume", "rm", vol); r.code != 1 || r.stderr != "Error response from daemon: "+msg+"\n" {
		t.Fatalf("volume rm of a volume in use: %s", r)
	}
	if r := e.docker(t, "volume", "rm", "-f", vol); r.code != 1 || !strings.Contains(r.stderr, msg) {
		t.Fatalf("volume rm -f of a volume in use: %s", r)
	}
	if code, body := e.api(t, "DELETE", "/volumes/"+vol, ""); code != http.StatusConflict || !strings.Contains(body, msg) {
		t.Fatalf("DELETE /volumes/%s in use: %d %s", vol, code, body)
	}
	// the container's own rm -v does not take a named volume with it
	must(t, e.docker(t, "rm", "-v", ctr))
	must(t, e.docker(t, "volume", "inspect", vol))

	bad := []struct {
		args   []string
		body   string
		status int
		msg    string
	}{
		{[]string{"a/b"}, `{"Name":"a/b"}`, http.StatusBadRequest,
			`create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{[]string{"--opt", "foo=bar", vol + "-o"}, `{"Name":"` + vol + `-o","DriverOpts":{"foo":"bar"}}`, http.StatusBadRequest,
			`create ` + vol + `-o: invalid option key: "foo"`},
		{[]string{"--opt", "device=/srv", vol + "-o"}, `{"Name":"` + vol + `-o","DriverOpts":{"device":"/srv"}}`, http.StatusBadRequest,
			`create ` + vol + `-o: missing required option: "type"`},
		{[]string{"-d", "nope", vol + "-d"}, `{"Name":"` + vol + `-d","Driver":"nope"}`, http.StatusNotFound,
			`create ` + vol + `-d: error looking up volume plugin nope: plugin "nope" not found`},
	}
	for _, tc := range bad {
		r := e.docker(t, append([]string{"volume", "create"}, tc.args...)...)
		if r.code != 1 || r.stderr != "Error response from daemon: "+tc.msg+"\n" {
			t.Errorf("volume create %v: %s\nwant message %q", tc.args, r, tc.msg)
		}
		if code, body := e.api(t, "POST", "/volumes/create", tc.body); code != tc.status || !strings.Contains(body, strings.ReplaceAll(tc.msg, `"`, `\"`)) {
			t.Errorf("POST /volumes/create %s: %d %s, want %d", tc.body, code, body, tc.status)
		}
	}
	// nothing was half-created
	for _, name := range []string{vol + "-o", vol + "-d"} {
		if r := e.docker(t, "volume", "inspect", name); r.code != 1 {
			t.Errorf("refused create left volume %s: %s", name, r)
		}
		if _, err := os.Stat(filepath.Join(e.dataRoot, "volumes", name)); !os.IsNotExist(err) {
			t.Errorf("refused create left directory of %s: %v", name, err)
		}
	}
}

// volumeEvent is the part of an event the volume tests read.
type volumeEvent struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
}

func (e *env) volumeEvents(t *testing.T, since, until time.Time, filters ...string) []volumeEvent {
	t.Helper()
	args := []string{"events", "--since", ts(since), "--until", ts(until), "--format", "{{json .}}"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	var out []volumeEvent
	for _, l := range strings.Split(strings.TrimSpace(must(t, e.docker(t, args...)).stdout), "\n") {
		if l == "" {
			continue
		}
		var ev volumeEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
}

func ts(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

func TestDockerVolumeEvents(t *testing.T) {
	e := daemonEnv(t)
	vol, ctr := uniq(t), uniq(t)+"-c"
	t.Cleanup(func() { e.docker(t, "rm", "-f", ctr); e.docker(t, "volume", "rm", "-f", vol) })
	since := time.Now().Add(-time.Second)
	must(t, e.docker(t, "volume", "create", vol))
	must(t, e.docker(t, "run", "--name", ctr, "-v", vol+":/data:ro", "busybox", "true"))
	id := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", ctr)).stdout)
	must(t, e.docker(t, "rm", ctr))
	must(t, e.docker(t, "volume", "rm", vol))
	until := time.Now().Add(time.Second)

	var mine []volumeEvent
	for _, ev := range e.volumeEvents(t, since, until, "type=volume") {
		if ev.Type != "volume" {
			t.Fatalf("--filter type=volume passed a %s event", ev.Type)
		}
		if ev.Actor.ID == vol {
			mine = append(mine, ev)
		}
	}
	want := []struct {
		action string
		attrs  map[string]string
	}{
		{"create", map[string]string{"driver": "local"}},
		{"mount", map[string]string{"container": id, "destination": "/data", "driver": "local", "propagation": "", "read/write": "false"}},
		{"unmount", map[string]string{"container": id, "driver": "local"}},
		{"destroy", map[string]string{"driver": "local"}},
	}
	if len(mine) != len(want) {
		t.Fatalf("events of %s: %+v", vol, mine)
	}
	for i, w := range want {
		if mine[i].Action != w.action || fmt.Sprint(mine[i].Actor.Attributes) != fmt.Sprint(w.attrs) {
			t.Errorf("event %d: %s %v, want %s %v", i, mine[i].Action, mine[i].Actor.Attributes, w.action, w.attrs)
		}
	}
	for _, action := range []string{"create", "destroy", "mount", "unmount"} {
		evs := e.volumeEvents(t, since, until, "event="+action, "volume="+vol)
		if len(evs) != 1 || evs[0].Action != action || evs[0].Type != "volume" || evs[0].Actor.ID != vol {
			t.Errorf("--filter event=%s --filter volume=%s: %+v", action, vol, evs)
		}
	}
}

// TestDockerVolumeCopyUpAtCreate: an empty volume gets the image's content
// at its mount point when the container is created, before any start, as
// dockerd does; nocopy and non-empty volumes are left alone.
func TestDockerVolumeCopyUpAtCreate(t *testing.T) {
	e := daemonEnv(t)
	vol, nocopy, ctr := uniq(t), uniq(t)+"-n", uniq(t)+"-c"
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", ctr, ctr+"2", ctr+"3")
		e.docker(t, "volume", "rm", "-f", vol, nocopy)
	})
	must(t, e.docker(t, "volume", "create", vol))
	must(t, e.docker(t, "create", "--name", ctr, "-v", vol+":/etc", "busybox", "true"))
	mp := strings.TrimSpace(must(t, e.docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol)).stdout)
	if got := readFile(t, filepath.Join(mp, "passwd")); got != imagePasswd(t, e) {
		t.Fatalf("volume after create: passwd = %q", got)
	}
	if st := must(t, e.docker(t, "inspect", "-f", "{{.State.Status}}", ctr)).stdout; st != "created\n" {
		t.Fatalf("container state %q", st)
	}
	// another container sees the content before the first one ever runs
	if r := must(t, e.docker(t, "run", "--rm", "-v", vol+":/x", "busybox", "cat", "/x/group")); !strings.Contains(r.stdout, "root:") {
		t.Fatalf("group in the volume: %q", r.stdout)
	}
	// a volume with content is not populated again
	must(t, e.docker(t, "create", "--name", ctr+"2", "-v", vol+":/bin", "busybox", "true"))
	if _, err := os.Stat(filepath.Join(mp, "busybox")); !os.IsNotExist(err) {
		t.Fatalf("a non-empty volume got the image's /bin: %v", err)
	}
	// volume-nocopy leaves it empty
	must(t, e.docker(t, "create", "--name", ctr+"3", "--mount", "type=volume,source="+nocopy+",target=/etc,volume-nocopy", "busybox", "true"))
	ents, err := os.ReadDir(filepath.Join(e.dataRoot, "volumes", nocopy, "_data"))
	if err != nil || len(ents) != 0 {
		t.Fatalf("nocopy volume: %d entries, %v", len(ents), err)
	}
	// a bind-backed volume whose device is missing fails the create only
	// where the image has content to copy, and then leaves no container
	missing := filepath.Join(t.TempDir(), "missing")
	must(t, e.docker(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+missing, vol+"-b"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", ctr+"4"); e.docker(t, "volume", "rm", "-f", vol+"-b") })
	must(t, e.docker(t, "create", "--name", ctr+"4", "-v", vol+"-b:/not-in-image", "busybox", "true"))
	if r := e.docker(t, "create", "--name", ctr+"5", "-v", vol+"-b:/etc", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, missing) {
		t.Fatalf("create with a missing bind device under /etc: %s", r)
	}
	if r := must(t, e.docker(t, "ps", "-aq", "--filter", "name="+ctr+"5")); r.stdout != "" {
		t.Fatalf("failed create left a container: %q", r.stdout)
	}
	// the create left no mount behind
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], e.dataRoot) && strings.HasSuffix(f[4], "/copy-up") {
			t.Fatalf("copy-up mount left behind: %s", l)
		}
	}
	id := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", ctr)).stdout)
	if _, err := os.Stat(filepath.Join(e.dataRoot, "containers", id, "copy-up")); !os.IsNotExist(err) {
		t.Fatalf("copy-up directory left behind: %v", err)
	}
}

// TestDockerMountTypes: --mount bind (readonly) and tmpfs (size, mode),
// and --tmpfs with options, as the container sees them and inspect shows.
func TestDockerMountTypes(t *testing.T) {
	e := daemonEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("host file\n"), 0o644)
	r := must(t, e.docker(t, "run", "--rm",
		"--mount", "type=bind,source="+host+",target=/b,readonly",
		"--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
		"--tmpfs", "/t2:size=2m,mode=700",
		"busybox", "sh", "-c",
		"cat /b/f; touch /b/g 2>/dev/null && echo bind-writable; stat -c %a /t /t2; df -k /t /t2 | tail -2 | awk '{print $2}'; grep -E ' /(t|t2|b) ' /proc/mounts | awk '{print $2, $3, substr($4, 1, 2)}'"))
	want := "host file\n1770\n700\n1024\n2048\n/b ext4 ro\n/t tmpfs rw\n/t2 tmpfs rw\n"
	// the bind's file system type is the host's: compare everything else
	lines := strings.Split(r.stdout, "\n")
	if len(lines) > 5 {
		if f := strings.Fields(lines[5]); len(f) == 3 && f[0] == "/b" {
			want = strings.Replace(want, "/b ext4 ro", "/b "+f[1]+" ro", 1)
		}
	}
	if r.stdout != want {
		t.Fatalf("mounts in the container:\n got %q\nwant %q", r.stdout, want)
	}
	if _, err := os.Stat(filepath.Join(host, "g")); err == nil {
		t.Fatalf("a readonly bind was written")
	}
	ctr := uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", ctr) })
	must(t, e.docker(t, "create", "--name", ctr, "--mount", "type=bind,source="+host+",target=/b,readonly", "--mount", "type=tmpfs,target=/t", "busybox", "true"))
	got := must(t, e.docker(t, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}};{{end}}", ctr)).stdout
	if !strings.Contains(got, "bind "+host+" /b false;") {
		t.Fatalf("inspect Mounts: %q", got)
	}
}

// dfAPI is the part of GET /system/df the disk-usage test reads.
type dfAPI struct {
	LayersSize int64
	Images     []struct {
		ID   string `json:"Id"`
		Size int64
	}
	Volumes []struct {
		Name      string
		UsageData struct{ Size, RefCount int64 }
	}
}

func (e *env) df(t *testing.T) dfAPI {
	t.Helper()
	code, body := e.api(t, "GET", "/system/df", "")
	if code != http.StatusOK {
		t.Fatalf("GET /system/df: %d %s", code, body)
	}
	var u dfAPI
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("system df: %v", err)
	}
	return u
}

// duBytes is `du -s -B1` of paths: the disk space, as system df promises.
func duBytes(t *testing.T, paths ...string) int64 {
	t.Helper()
	out, err := exec.Command("du", append([]string{"-s", "-c", "-B1"}, paths...)...).Output()
	if err != nil {
		t.Fatalf("du %v: %v", paths, err)
	}
	ls := strings.Split(strings.TrimSpace(string(out)), "\n")
	n, err := strconv.ParseInt(strings.Fields(ls[len(ls)-1])[0], 10, 64)
	if err != nil {
		t.Fatalf("du output %q", out)
	}
	return n
}

func within(got, want int64, frac float64) bool {
	d := float64(got - want)
	return d <= frac*float64(want) && -d <= frac*float64(want)
}

// TestDockerSystemDfAndPrune: the numbers of system df match what is on
// disk (a new image's layer, a volume's content), the CLI prints them, and
// system prune removes what it reports with the space it really frees.
func TestDockerSystemDfAndPrune(t *testing.T) {
	e := daemonEnv(t)
	label := "berth.test=" + uniq(t)
	vol, src, img := uniq(t), uniq(t)+"-src", "dftest/"+uniq(t)+":v1"
	t.Cleanup(func() {
		e.docker(t, "rm", "-f", src, src+"-2")
		e.docker(t, "rmi", "-f", img)
		e.docker(t, "volume", "rm", "-f", vol)
		e.docker(t, "network", "rm", vol+"-net")
	})

	// a volume of ~600 KiB in 3 files: df's size vs du of its directory
	must(t, e.docker(t, "run", "--rm", "-v", vol+":/v", "busybox", "sh", "-c",
		"for i in 1 2 3; do dd if=/dev/urandom of=/v/f$i bs=1k count=200 2>/dev/null; done"))
	mp := filepath.Join(e.dataRoot, "volumes", vol, "_data")
	var vsize int64 = -1
	for _, v := range e.df(t).Volumes {
		if v.Name == vol {
			vsize = v.UsageData.Size
		}
	}
	if du := duBytes(t, mp); !within(vsize, du, 0.10) || vsize < 600<<10 {
		t.Fatalf("volume %s: system df says %d bytes, du says %d", vol, vsize, du)
	}
	row := ""
	for _, l := range strings.Split(must(t, e.docker(t, "system", "df", "-v")).stdout, "\n") {
		if strings.HasPrefix(l, vol+" ") {
			row = strings.Join(strings.Fields(l), " ")
		}
	}
	if want := vol + " 0 " + units.HumanSize(float64(vsize)); row != want {
		t.Fatalf("system df -v row %q, want %q", row, want)
	}

	// a new image with one 1 MiB layer of its own: the images' total grows
	// by what du sees the unpacked layers grow by (docker's unit: the
	// compressed blob in content/ is not counted, see DiskUsage), and the
	// image's size by the layer
	store := []string{filepath.Join(e.dataRoot, "snapshots")}
	before, duBefore := e.df(t), duBytes(t, store...)
	must(t, e.docker(t, "run", "--name", src, "busybox", "dd", "if=/dev/urandom", "of=/blob", "bs=1k", "count=1024"))
	must(t, e.docker(t, "commit", src, img))
	must(t, e.docker(t, "rm", src))
	after, duAfter := e.df(t), duBytes(t, store...)
	if grow, duGrow := after.LayersSize-before.LayersSize, duAfter-duBefore; !within(grow, duGrow, 0.10) || !within(grow, 1<<20, 0.10) {
		t.Fatalf("images total grew by %d bytes, du of the unpacked layers by %d, want about 1 MiB", grow, duGrow)
	}
	sizes := func(u dfAPI) map[string]int64 {
		m := map[string]int64{}
		for _, i := range u.Images {
			m[i.ID] = i.Size
		}
		return m
	}
	newID := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", img)).stdout)
	bbID := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", "busybox")).stdout)
	if layer := sizes(after)[newID] - sizes(after)[bbID]; !within(layer, 1<<20, 0.05) {
		t.Fatalf("the committed image is %d bytes larger than busybox, want about 1 MiB", layer)
	}
	cliImages := ""
	for _, l := range strings.Split(must(t, e.docker(t, "system", "df", "--format", "{{.Type}}={{.Size}}")).stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "Images="); ok {
			cliImages = v
		}
	}
	if want := units.HumanSize(float64(after.LayersSize)); cliImages != want {
		t.Fatalf("system df Images size %q, API LayersSize %d (%s)", cliImages, after.LayersSize, want)
	}
	// RECLAIMABLE is the images no container uses, as with dockerd: a
	// container made from the new image takes its own 1 MiB layer out
	reclaimable := func() int64 {
		t.Helper()
		for _, l := range strings.Split(must(t, e.docker(t, "system", "df", "--format", "{{.Type}}={{.Reclaimable}}")).stdout, "\n") {
			if v, ok := strings.CutPrefix(l, "Images="); ok {
				n, err := units.FromHumanSize(strings.Fields(v)[0])
				if err != nil {
					t.Fatalf("system df Images reclaimable %q: %v", v, err)
				}
				return n
			}
		}
		t.Fatal("system df prints no Images line")
		return 0
	}
	r0 := reclaimable()
	must(t, e.docker(t, "create", "--name", src+"-use", img, "true"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", src+"-use") })
	if r1 := reclaimable(); !within(r0-r1, 1<<20, 0.15) {
		t.Fatalf("system df Images reclaimable %d before and %d after a container uses the new image, want 1 MiB less", r0, r1)
	}
	must(t, e.docker(t, "rm", src+"-use"))

	// system prune: a stopped container with 512 KiB written, an unused
	// network, a dangling image. (Not --filter label=: berth's build cache
	// prune refuses the label filter that dockerd ignores.)
	must(t, e.docker(t, "run", "--name", src+"-2", "--label", label, "busybox", "dd", "if=/dev/urandom", "of=/junk", "bs=1k", "count=512"))
	cid := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{.Id}}", src+"-2")).stdout)
	must(t, e.docker(t, "network", "create", "--label", label, "--subnet", "10.251.77.0/24", vol+"-net"))
	dangling := strings.TrimSpace(must(t, e.docker(t, "commit", "--change", "LABEL "+label, src+"-2")).stdout)
	out := must(t, e.docker(t, "system", "prune", "-f")).stdout
	for _, want := range []string{"Deleted Containers:\n" + cid + "\n", "Deleted Networks:\n" + vol + "-net\n", "deleted: " + dangling + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("system prune output lacks %q:\n%s", want, out)
		}
	}
	i := strings.LastIndex(out, "Total reclaimed space: ")
	if i < 0 {
		t.Fatalf("system prune output:\n%s", out)
	}
	reclaimed, err := units.FromHumanSize(strings.TrimSpace(out[i+len("Total reclaimed space: "):]))
	// the container's 512 KiB and the dangling image's 512 KiB layer
	if err != nil || reclaimed < 1<<20 {
		t.Errorf("reclaimed %d (%v), want at least 1 MiB:\n%s", reclaimed, err, out)
	}
	for _, args := range [][]string{{"container", "inspect", cid}, {"network", "inspect", vol + "-net"}, {"image", "inspect", dangling}} {
		if r := e.docker(t, args...); r.code != 1 {
			t.Errorf("%v after system prune: %s", args, r)
		}
	}
	// a tagged image and a volume (no --volumes) are kept
	must(t, e.docker(t, "image", "inspect", img))
	must(t, e.docker(t, "volume", "inspect", vol))
}
