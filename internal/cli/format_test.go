package cli

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

func TestPsTableMatchesDocker(t *testing.T) {
	now := time.Now().Unix()
	items := []container.Summary{
		{
			ID: "0614024d36ebf5557b769b3891de4e5fea848386ba07a4be4a788ce10e02162d", Names: []string{"/apicap-log"},
			Image: "busybox", Command: "sh -c 'i=0; while true; do echo $i; done'", Created: now - 5, Status: "Up 4 seconds",
		},
		{
			ID: testID, Names: []string{"/apicap-x"}, Image: "busybox", Command: "sleep 300", Created: now - 14,
			Status: "Up 13 seconds",
			Ports:  []container.PortSummary{{IP: netip.MustParseAddr("127.0.0.1"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"}},
		},
	}
	var buf bytes.Buffer
	if err := writeContainers(&buf, &psOptions{}, items); err != nil {
		t.Fatal(err)
	}
	// Captured from docker 28.2.2 (captures/ps.log).
	want := `CONTAINER ID   IMAGE     COMMAND                  CREATED          STATUS          PORTS                    NAMES
0614024d36eb   busybox   "sh -c 'i=0; while t…"   5 seconds ago    Up 4 seconds                             apicap-log
a1a8786f58ec   busybox   "sleep 300"              14 seconds ago   Up 13 seconds   127.0.0.1:8080->80/tcp   apicap-x
`
	if buf.String() != want {
		t.Fatalf("ps table:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := writeContainers(&buf, &psOptions{quiet: true}, items); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "0614024d36eb\na1a8786f58ec\n" {
		t.Fatalf("ps -q: %q", buf.String())
	}

	items[1].SizeRootFs = 1984000
	buf.Reset()
	opts := &psOptions{noTrunc: true, format: "{{.ID}} {{.Names}} {{.Status}} {{.Ports}} {{.Size}}"}
	if err := writeContainers(&buf, opts, items[1:]); err != nil {
		t.Fatal(err)
	}
	if want := testID + " apicap-x Up 13 seconds 127.0.0.1:8080->80/tcp 0B (virtual 1.98MB)\n"; buf.String() != want {
		t.Fatalf("ps --format: %q, want %q", buf.String(), want)
	}
}

func TestPsEmptyAndBrokenFields(t *testing.T) {
	var buf bytes.Buffer
	if err := writeContainers(&buf, &psOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n" {
		t.Fatalf("empty ps: %q", buf.String())
	}
	buf.Reset()
	// Names without the leading slash lose their first character, as in docker.
	_ = writeContainers(&buf, &psOptions{format: "{{.Names}} {{.Image}}"}, []container.Summary{{Names: []string{"noslash-name"}}})
	if buf.String() != "oslash-name <no image>\n" {
		t.Fatalf("got %q", buf.String())
	}
}

func TestDisplayablePorts(t *testing.T) {
	ip := netip.MustParseAddr("0.0.0.0")
	ports := []container.PortSummary{
		{PrivatePort: 81, Type: "tcp"}, {PrivatePort: 80, Type: "tcp"}, {PrivatePort: 82, Type: "tcp"},
		{PrivatePort: 53, Type: "udp"},
		{IP: ip, PrivatePort: 443, PublicPort: 8443, Type: "tcp"},
		{IP: ip, PrivatePort: 9000, PublicPort: 9000, Type: "tcp"},
		{IP: netip.MustParseAddr("::"), PrivatePort: 443, PublicPort: 8443, Type: "tcp"},
	}
	got := displayablePorts(ports)
	want := "53/udp, 80-82/tcp, 0.0.0.0:9000->9000/tcp, 0.0.0.0:8443->443/tcp, [::]:8443->443/tcp"
	if got != want {
		t.Fatalf("ports = %q\nwant   %q", got, want)
	}
}

func TestImagesTableMatchesDocker(t *testing.T) {
	now := time.Now().Unix()
	items := []image.Summary{
		{ID: "sha256:710e10e55d1f" + strings.Repeat("0", 52), RepoTags: []string{"t1:latest"}, Created: now - 300, Size: 1984000, Containers: -1, SharedSize: -1},
		{ID: "sha256:7532a0520f81" + strings.Repeat("0", 52), RepoTags: []string{"busybox:latest"}, Created: now - 310, Size: 1984000, Containers: -1, SharedSize: -1},
		{ID: "sha256:ad9e4b9434a4" + strings.Repeat("0", 52), RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"}, Created: now - 360, Size: 1920, Containers: -1, SharedSize: -1},
	}
	var buf bytes.Buffer
	if err := writeImages(&buf, &imagesOptions{}, items); err != nil {
		t.Fatal(err)
	}
	want := `REPOSITORY   TAG       IMAGE ID       CREATED         SIZE
t1           latest    710e10e55d1f   5 minutes ago   1.98MB
busybox      latest    7532a0520f81   5 minutes ago   1.98MB
<none>       <none>    ad9e4b9434a4   6 minutes ago   1.92kB
`
	if buf.String() != want {
		t.Fatalf("images:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := writeImages(&buf, &imagesOptions{format: "{{json .}}"}, items[:1]); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"Containers":"N/A","CreatedAt":"` + time.Unix(now-300, 0).String() + `","CreatedSince":"5 minutes ago","Digest":"\u003cnone\u003e","ID":"710e10e55d1f","Repository":"t1","SharedSize":"N/A","Size":"1.98MB","Tag":"latest","UniqueSize":"N/A","VirtualSize":"1.984MB"}` + "\n"
	if buf.String() != wantJSON {
		t.Fatalf("images json:\n%s\nwant:\n%s", buf.String(), wantJSON)
	}
}

func TestImagesDigestsAndRepoNormalisation(t *testing.T) {
	img := image.Summary{
		ID:          "sha256:" + strings.Repeat("ab", 32),
		RepoTags:    []string{"docker.io/library/busybox:latest", "127.0.0.1:5002/apicap/busybox:v1"},
		RepoDigests: []string{"127.0.0.1:5002/apicap/busybox@sha256:" + strings.Repeat("cd", 32)},
	}
	rows := imageRows(img, true, true)
	var got []string
	for _, r := range rows {
		got = append(got, r.Repository()+" "+r.Tag()+" "+r.Digest())
	}
	want := []string{
		"127.0.0.1:5002/apicap/busybox v1 sha256:" + strings.Repeat("cd", 32),
		"busybox latest <none>",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rows %q, want %q", got, want)
	}
}

func TestHumanDurations(t *testing.T) {
	now := time.Now().Unix()
	for _, tc := range []struct {
		ago  int64
		want string
	}{
		{0, "Less than a second ago"},
		{5, "5 seconds ago"},
		{65, "About a minute ago"},
		{150, "2 minutes ago"},
		{3700, "About an hour ago"},
		{3 * 86400, "3 days ago"},
	} {
		if got := humanAgo(now - tc.ago); got != tc.want {
			t.Errorf("%ds: %q, want %q", tc.ago, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0B"}, {32, "32B"}, {1920, "1.92kB"}, {1984000, "1.98MB"}, {330200000, "330MB"}} {
		if got := humanSize(tc.n); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestTemplateFunctions(t *testing.T) {
	type row struct {
		Name  string
		Items []string
	}
	rows := []row{{Name: "Hello world", Items: []string{"a", "b"}}}
	for format, want := range map[string]string{
		`{{json .Items}}`:                  `["a","b"]`,
		`{{join .Items ","}}`:              "a,b",
		`{{upper .Name}}|{{lower .Name}}`:  "HELLO WORLD|hello world",
		`{{title "foo bar"}}`:              "Foo Bar",
		`{{split "a:b" ":"}}`:              "[a b]",
		`{{truncate .Name 5}}`:             "Hello",
		`[{{pad .Name 1 2}}]`:              "[ Hello world  ]",
		`{{.Name}}\t{{len .Items}}`:        "Hello world\t2",
		`{{println .Name}}`:                "Hello world\n",
		`{{json "<x>"}}`:                   `"<x>"`,
		`table {{.Name}}\t{{upper .Name}}`: "Name          Name\nHello world   HELLO WORLD",
	} {
		var buf bytes.Buffer
		if err := writeList(&buf, format, map[string]string{"Name": "Name"}, rows); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if got := strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("%s: %q, want %q", format, got, want)
		}
	}
	if err := writeList(&bytes.Buffer{}, "{{.Nope", nil, rows); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("bad template: %v", err)
	}
}

func TestStatsEntry(t *testing.T) {
	s := &container.StatsResponse{ID: testID, Name: "/apicap-x"}
	s.CPUStats.CPUUsage.TotalUsage = 2_000_000
	s.PreCPUStats.CPUUsage.TotalUsage = 1_000_000
	s.CPUStats.SystemUsage = 200_000_000
	s.PreCPUStats.SystemUsage = 100_000_000
	s.CPUStats.OnlineCPUs = 2
	s.MemoryStats.Usage = 446464 + 4096
	s.MemoryStats.Stats = map[string]uint64{"total_inactive_file": 4096}
	s.MemoryStats.Limit = 64 << 20
	s.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 586}}
	s.PidsStats.Current = 1
	var buf bytes.Buffer
	if err := writeList(&buf, defaultStatsFormat, statsHeader, []statsEntry{newStatsEntry("apicap-x", s, true)}); err != nil {
		t.Fatal(err)
	}
	want := `CONTAINER ID   NAME       CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O   PIDS
a1a8786f58ec   apicap-x   2.00%     436KiB / 64MiB      0.67%     586B / 0B   0B / 0B     1
`
	if buf.String() != want {
		t.Fatalf("stats:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestEscapeProxy(t *testing.T) {
	keys, err := parseDetachKeys("ctrl-p,ctrl-q")
	if err != nil || string(keys) != "\x10\x11" {
		t.Fatalf("keys %q err %v", keys, err)
	}
	if _, err := parseDetachKeys("ctrl-1"); err == nil {
		t.Fatal("ctrl-1 must be refused")
	}
	// A lone ctrl-p is passed on once the next byte shows it was not an escape.
	p := newEscapeProxy(strings.NewReader("ab\x10c"), keys)
	var out bytes.Buffer
	if _, err := out.ReadFrom(p); err != nil || out.String() != "ab\x10c" {
		t.Fatalf("got %q err %v", out.String(), err)
	}
	p = newEscapeProxy(strings.NewReader("echo\x10\x11ignored"), keys)
	out.Reset()
	_, err = out.ReadFrom(p)
	if err != errEscape || out.String() != "echo" {
		t.Fatalf("got %q err %v, want echo + escape", out.String(), err)
	}
}
