package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVolumeLifecycle drives create/ls/inspect/rm through both CLIs,
// including the 409 of removing a volume a container uses.
func TestVolumeLifecycle(t *testing.T) {
	e := daemonEnv(t)
	for _, which := range cpCLIs {
		t.Run(which, func(t *testing.T) {
			vol := uniq(t)
			if r := must(t, e.cli(t, which, "volume", "create", "--label", "suite=volume", vol)); strings.TrimSpace(r.stdout) != vol {
				t.Fatalf("create printed %q, want %q", r.stdout, vol)
			}
			ls := must(t, e.cli(t, which, "volume", "ls"))
			if !strings.HasPrefix(ls.stdout, "DRIVER    VOLUME NAME\n") || !strings.Contains(ls.stdout, "local     "+vol+"\n") {
				t.Fatalf("volume ls:\n%s", ls.stdout)
			}
			q := must(t, e.cli(t, which, "volume", "ls", "-q", "--filter", "name="+vol, "--filter", "label=suite=volume"))
			if strings.TrimSpace(q.stdout) != vol {
				t.Fatalf("ls -q with filters: %q", q.stdout)
			}
			if q := must(t, e.cli(t, which, "volume", "ls", "-q", "--filter", "label=suite=other", "--filter", "name="+vol)); q.stdout != "" {
				t.Fatalf("label filter let %q through", q.stdout)
			}
			mp := must(t, e.cli(t, which, "volume", "inspect", "-f", "{{.Driver}} {{.Scope}} {{.Mountpoint}} {{.Labels.suite}}", vol))
			want := "local local " + filepath.Join(e.dataRoot, "volumes", vol, "_data") + " volume\n"
			if mp.stdout != want {
				t.Fatalf("inspect: %q, want %q", mp.stdout, want)
			}
			ctr := uniq(t)
			must(t, e.cli(t, which, "create", "--name", ctr, "-v", vol+":/data", "busybox", "true"))
			r := e.cli(t, which, "volume", "rm", vol)
			if r.code != 1 || !strings.Contains(r.stderr, "remove "+vol+": volume is in use") {
				t.Fatalf("rm of a volume in use: %s", r)
			}
			if d := must(t, e.cli(t, which, "volume", "ls", "-q", "--filter", "dangling=true", "--filter", "name="+vol)); d.stdout != "" {
				t.Fatalf("a volume in use listed as dangling: %q", d.stdout)
			}
			must(t, e.cli(t, which, "rm", ctr))
			if r := must(t, e.cli(t, which, "volume", "rm", vol)); strings.TrimSpace(r.stdout) != vol {
				t.Fatalf("rm printed %q", r.stdout)
			}
			r = e.cli(t, which, "volume", "inspect", vol)
			if r.code != 1 || !strings.Contains(r.stderr, "get "+vol+": no such volume") {
				t.Fatalf("inspect of a removed volume: %s", r)
			}
			r = e.cli(t, which, "volume", "rm", vol)
			if r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
				t.Fatalf("rm of a missing volume: %s", r)
			}
			must(t, e.cli(t, which, "volume", "rm", "-f", vol)) // force ignores a missing volume
		})
	}
}

// TestVolumeDataPersistsAndCopyUp checks that data outlives a container and
// that an empty volume is filled from the image's content at its target.
func TestVolumeDataPersistsAndCopyUp(t *testing.T) {
	e := daemonEnv(t)
	vol := uniq(t)
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", vol, vol+"-etc", vol+"-nocopy") })
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	must(t, e.docker(t, "run", "--rm", "-v", vol+":/data", "busybox", "sh", "-c", "echo persisted > /data/f"))
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	evs := must(t, e.docker(t, "events", "--since", since, "--until", until, "--filter", "type=volume", "--format", "{{.Actor.ID}} {{.Action}}")).stdout
	var got []string
	for _, l := range strings.Split(evs, "\n") {
		if id, action, ok := strings.Cut(l, " "); ok && id == vol {
			got = append(got, action)
		}
	}
	if strings.Join(got, ",") != "create,mount,unmount" {
		t.Fatalf("volume events %v; all:\n%s", got, evs)
	}
	if r := must(t, e.docker(t, "run", "--rm", "--mount", "type=volume,source="+vol+",target=/data,readonly", "busybox", "cat", "/data/f")); r.stdout != "persisted\n" {
		t.Fatalf("second container read %q", r.stdout)
	}
	r := e.docker(t, "run", "--rm", "-v", vol+":/data:ro", "busybox", "touch", "/data/g")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to a read-only volume: %s", r)
	}
	must(t, e.docker(t, "run", "--rm", "-v", vol+"-etc:/etc", "busybox", "true"))
	passwd, err := os.ReadFile(filepath.Join(e.dataRoot, "volumes", vol+"-etc", "_data", "passwd"))
	if err != nil || !strings.Contains(string(passwd), "root:") {
		t.Fatalf("copy-up did not bring the image's /etc/passwd: %q %v", passwd, err)
	}
	must(t, e.docker(t, "run", "--rm", "--mount", "type=volume,source="+vol+"-nocopy,target=/etc,volume-nocopy", "busybox", "true"))
	// (the runtime still creates the hostname/hosts/resolv.conf mount points)
	if _, err := os.Stat(filepath.Join(e.dataRoot, "volumes", vol+"-nocopy", "_data", "passwd")); !os.IsNotExist(err) {
		t.Fatalf("volume-nocopy volume got the image's passwd: %v", err)
	}
}

// TestVolumeAnonymous covers -v /path: inspect shows a 64-hex volume,
// --volumes-from shares it, rm -v removes it, and prune takes anonymous
// volumes only unless --all.
func TestVolumeAnonymous(t *testing.T) {
	e := daemonEnv(t)
	ctr := uniq(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hf"), []byte("host"), 0o644)
	must(t, e.docker(t, "run", "--name", ctr, "-v", "/data", "-v", host+":/h", "busybox", "sh", "-c", "echo anon > /data/x"))
	t.Cleanup(func() { e.docker(t, "rm", "-fv", ctr) })
	mount := must(t, e.docker(t, "inspect", "-f", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}{{end}}", ctr)).stdout
	f := strings.Fields(mount)
	if len(f) != 5 || f[0] != "volume" || len(f[1]) != 64 || f[2] != "/data" || f[3] != "local" || f[4] != "true" {
		t.Fatalf("inspect Mounts: %q", mount)
	}
	anon := f[1]
	if r := must(t, e.docker(t, "run", "--rm", "--volumes-from", ctr+":ro", "busybox", "cat", "/data/x", "/h/hf")); r.stdout != "anon\nhost" {
		t.Fatalf("--volumes-from read %q", r.stdout)
	}
	if r := e.docker(t, "run", "--rm", "--volumes-from", ctr+":ro", "busybox", "touch", "/data/y"); r.code == 0 {
		t.Fatal("--volumes-from :ro mounted the volume writable")
	}
	if ps := must(t, e.docker(t, "ps", "-a", "--filter", "name="+ctr, "--format", "{{.Mounts}}")); !strings.Contains(ps.stdout, anon[:5]) {
		t.Fatalf("ps Mounts: %q", ps.stdout)
	}
	must(t, e.docker(t, "rm", "-v", ctr))
	if r := e.docker(t, "volume", "inspect", anon); r.code != 1 {
		t.Fatalf("rm -v left the anonymous volume: %s", r)
	}

	// prune: anonymous by default, named only with --all
	label := "prune=" + uniq(t)
	named := uniq(t) + "-named"
	must(t, e.docker(t, "volume", "create", "--label", label, named))
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", named) })
	c2 := uniq(t) + "-2"
	must(t, e.docker(t, "create", "--name", c2, "-v", "/scratch", "busybox"))
	anon2 := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", c2)).stdout)
	must(t, e.docker(t, "rm", c2)) // without -v the volume stays
	must(t, e.docker(t, "volume", "inspect", anon2))
	out := must(t, e.docker(t, "volume", "prune", "-f")).stdout
	if !strings.Contains(out, "Deleted Volumes:\n") || !strings.Contains(out, anon2+"\n") || strings.Contains(out, named) {
		t.Fatalf("default prune:\n%s", out)
	}
	out = must(t, e.berth(t, "volume", "prune", "-af", "--filter", "label="+label)).stdout
	if !strings.Contains(out, named+"\n") || !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("prune --all:\n%s", out)
	}
}

// TestVolumeTmpfsBacked uses docker's local driver options for a tmpfs:
// mounted while a container runs, gone after.
func TestVolumeTmpfsBacked(t *testing.T) {
	e := daemonEnv(t)
	vol := uniq(t)
	must(t, e.berth(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=10m", vol))
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", vol) })
	if o := must(t, e.docker(t, "volume", "inspect", "-f", "{{.Options.type}} {{.Options.o}}", vol)).stdout; o != "tmpfs size=10m\n" {
		t.Fatalf("options: %q", o)
	}
	r := must(t, e.docker(t, "run", "--rm", "-v", vol+":/t", "busybox", "sh", "-c", "echo x > /t/x; df -k /t | tail -1"))
	if f := strings.Fields(r.stdout); len(f) < 2 || f[0] != "tmpfs" || f[1] != "10240" {
		t.Fatalf("df in the container: %q", r.stdout)
	}
	if r := must(t, e.docker(t, "run", "--rm", "-v", vol+":/t", "busybox", "ls", "/t")); r.stdout != "" {
		t.Fatalf("a tmpfs volume kept %q after its last user exited", r.stdout)
	}
	mp := filepath.Join(e.dataRoot, "volumes", vol, "_data")
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), mp) {
		t.Fatalf("%s still mounted", mp)
	}
}

// TestVolumeDiskUsageAndCp: system df -v lists volumes with sizes, and cp
// reaches into a volume mounted in a container.
func TestVolumeDiskUsageAndCp(t *testing.T) {
	e := daemonEnv(t)
	vol, ctr := uniq(t), uniq(t)
	t.Cleanup(func() { e.docker(t, "rm", "-f", ctr); e.docker(t, "volume", "rm", "-f", vol) })
	must(t, e.docker(t, "create", "--name", ctr, "-v", vol+":/data", "busybox", "cat", "/data/in"))
	src := filepath.Join(t.TempDir(), "in")
	os.WriteFile(src, []byte("0123456789"), 0o644)
	must(t, e.docker(t, "cp", src, ctr+":/data/in"))
	if b, err := os.ReadFile(filepath.Join(e.dataRoot, "volumes", vol, "_data", "in")); err != nil || string(b) != "0123456789" {
		t.Fatalf("cp into the volume: %q %v", b, err)
	}
	if r := must(t, e.docker(t, "start", "-a", ctr)); r.stdout != "0123456789" {
		t.Fatalf("container read %q", r.stdout)
	}
	df := must(t, e.docker(t, "system", "df", "-v")).stdout
	var row string
	for _, l := range strings.Split(df, "\n") {
		if strings.HasPrefix(l, vol+" ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 3 || f[1] != "1" || f[2] != "10B" {
		t.Fatalf("system df -v row for %s: %q\n%s", vol, row, df)
	}
	if !strings.Contains(df, "Local Volumes space usage:") {
		t.Fatalf("system df -v:\n%s", df)
	}
}

// TestVolumeFromImageAndBindBacked: an image's VOLUME gets an anonymous
// volume populated from the image, and a bind-backed volume shows the host
// directory.
func TestVolumeFromImageAndBindBacked(t *testing.T) {
	e := daemonEnv(t)
	base, img := uniq(t), uniq(t)+"-img"
	must(t, e.docker(t, "run", "--name", base, "busybox", "sh", "-c", "mkdir /srv && echo seeded > /srv/seed"))
	t.Cleanup(func() { e.docker(t, "rm", "-f", base) })
	must(t, e.docker(t, "commit", "--change", "VOLUME /srv", base, img))
	t.Cleanup(func() { e.docker(t, "rmi", "-f", img) })
	ctr := uniq(t) + "-c"
	if r := must(t, e.docker(t, "run", "--name", ctr, img, "cat", "/srv/seed")); r.stdout != "seeded\n" {
		t.Fatalf("image VOLUME content: %q", r.stdout)
	}
	name := strings.TrimSpace(must(t, e.docker(t, "inspect", "-f", "{{range .Mounts}}{{if eq .Destination \"/srv\"}}{{.Name}}{{end}}{{end}}", ctr)).stdout)
	if len(name) != 64 {
		t.Fatalf("no anonymous volume at /srv: %q", name)
	}
	must(t, e.docker(t, "rm", "-v", ctr))
	if r := e.docker(t, "volume", "inspect", name); r.code != 1 {
		t.Fatalf("rm -v left %s: %s", name, r)
	}

	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "h"), []byte("from-host"), 0o644)
	vol := uniq(t) + "-bind"
	must(t, e.docker(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+host, vol))
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", vol) })
	if r := must(t, e.docker(t, "run", "--rm", "-v", vol+":/b", "busybox", "sh", "-c", "cat /b/h; echo back > /b/w")); r.stdout != "from-host" {
		t.Fatalf("bind-backed volume read %q", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(host, "w")); err != nil || string(b) != "back\n" {
		t.Fatalf("write through the bind volume: %q %v", b, err)
	}
}
