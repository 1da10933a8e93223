package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCpSymlinkEscapeThroughMounts: symlinks that live in a named volume
// or in a host directory bound into the container (created on the host
// side, where a naive resolution would follow them on the host) point at
// "/" or climb with "..": cp must resolve them in the container's view,
// into and out of running and stopped containers, with both CLIs. A tar
// piped into a volume that plants a link and then writes through it stays
// inside too (CVE-2018-15664's class; TestCpSymlinkEscape covers links in
// the container's own file system).
func TestCpSymlinkEscapeThroughMounts(t *testing.T) {
	e := daemonEnv(t)
	busyboxPasswd := imagePasswd(t, e)
	for _, state := range []string{"running", "stopped"} {
		for _, cli := range cpCLIs {
			t.Run(state+"-"+cli, func(t *testing.T) {
				name, vol := uniq(t), uniq(t)+"-v"
				host := t.TempDir()
				t.Cleanup(func() { e.docker(t, "rm", "-f", name); e.docker(t, "volume", "rm", "-f", vol) })
				// links planted on the host side of the bind: absolute and climbing
				if err := os.Symlink("/", filepath.Join(host, "hostroot")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../../../../../../..", filepath.Join(host, "hostup")); err != nil {
					t.Fatal(err)
				}
				setup := "ln -s / /data/root; ln -s ../../../.. /data/up; mkdir /data/d; ln -s ../../../etc /data/d/etc"
				args := []string{"--name", name, "-v", vol + ":/data", "-v", host + ":/h", "busybox", "sh", "-c"}
				if state == "running" {
					must(t, e.docker(t, append(append([]string{"run", "-d"}, args...), setup+"; exec sleep 300")...))
					waitFor(t, func() bool { return e.docker(t, "exec", name, "test", "-L", "/data/d/etc").code == 0 })
				} else {
					must(t, e.docker(t, append([]string{"run"}, append(args, setup)...)...))
				}
				dir := t.TempDir()
				marker := "berth-cp-mount-escape-" + filepath.Base(dir)
				src := filepath.Join(dir, marker)
				os.WriteFile(src, []byte("must stay inside\n"), 0o644)
				t.Cleanup(func() {
					for _, p := range []string{"/" + marker, "/etc/" + marker, "/tmp/" + marker} {
						os.Remove(p)
					}
				})
				hostUntouched := func(when string) {
					t.Helper()
					for _, p := range []string{"/" + marker, "/etc/" + marker, "/tmp/" + marker, filepath.Join(filepath.Dir(host), marker)} {
						if _, err := os.Lstat(p); err == nil {
							t.Fatalf("%s: %s was written on the HOST", when, p)
						}
					}
				}

				// into the container through links in the volume and the bind
				for _, dst := range []string{"/data/root/", "/data/up/", "/h/hostroot/", "/h/hostup/", "/data/d/etc/", "/h/hostroot/tmp/"} {
					must(t, e.cli(t, cli, "cp", src, name+":"+dst))
					hostUntouched("cp to " + dst)
				}
				for _, p := range []string{"/" + marker, "/etc/" + marker, "/tmp/" + marker} {
					if got := e.catIn(t, name, p); got != "must stay inside\n" {
						t.Errorf("container %s = %q", p, got)
					}
				}
				// a tar that plants a link to / in the volume, then writes through it
				tarball := string(makeTar(t, symlink("evil", "/"), file("evil/tmp/"+marker+"-tar", "piped\n")))
				r := e.cliIn(t, cli, tarball, "cp", "-", name+":/data")
				hostUntouched("cp - with a planted link")
				if _, err := os.Lstat("/tmp/" + marker + "-tar"); err == nil {
					os.Remove("/tmp/" + marker + "-tar")
					t.Fatalf("cp - wrote through a planted link on the HOST: %s", r)
				}
				if r.code == 0 {
					if got := e.catIn(t, name, "/tmp/"+marker+"-tar"); got != "piped\n" {
						t.Errorf("cp - through the planted link: container /tmp = %q", got)
					}
				}

				// out of the container through the links: the container's passwd
				out := filepath.Join(dir, "out")
				os.Mkdir(out, 0o755)
				for i, p := range []string{"/data/root/etc/passwd", "/data/up/etc/passwd", "/h/hostroot/etc/passwd", "/h/hostup/etc/passwd", "/data/d/etc/passwd"} {
					dst := filepath.Join(out, "p"+string(rune('0'+i)))
					must(t, e.cli(t, cli, "cp", name+":"+p, dst))
					if got := readFile(t, dst); got != busyboxPasswd {
						t.Errorf("cp %s: got %q, want the container's passwd", p, got)
					}
				}
				// the link itself, without following it
				must(t, e.cli(t, cli, "cp", name+":/h/hostroot", filepath.Join(out, "link")))
				if target, err := os.Readlink(filepath.Join(out, "link")); err != nil || target != "/" {
					t.Errorf("cp /h/hostroot: readlink = %q, %v", target, err)
				}
			})
		}
	}
}

// TestDockerMountPropagationAndVolumeOpt: --mount bind-propagation=rslave
// lets a mount made on the host later appear in the container, where the
// default (rprivate) does not; --mount volume-opt creates a tmpfs-backed
// volume with those options.
func TestDockerMountPropagationAndVolumeOpt(t *testing.T) {
	e := daemonEnv(t)
	host := t.TempDir()
	// the source must be a shared mount for anything to propagate
	if err := unix.Mount(host, host, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", host, err)
	}
	t.Cleanup(func() { unix.Unmount(host, unix.MNT_DETACH) })
	if err := unix.Mount("", host, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatalf("make %s shared: %v", host, err)
	}
	slave, private := uniq(t)+"-s", uniq(t)+"-p"
	t.Cleanup(func() { e.docker(t, "rm", "-f", slave, private) })
	must(t, e.docker(t, "run", "-d", "--name", slave, "--mount", "type=bind,source="+host+",target=/b,bind-propagation=rslave", "busybox", "sleep", "300"))
	must(t, e.docker(t, "run", "-d", "--name", private, "--mount", "type=bind,source="+host+",target=/b", "busybox", "sleep", "300"))
	if p := must(t, e.docker(t, "inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}}", slave)).stdout; p != "rslave\n" {
		t.Fatalf("inspect propagation of %s: %q", slave, p)
	}
	sub := filepath.Join(host, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", sub, err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(sub, "f"), []byte("propagated\n"), 0o644)
	if got := e.catIn(t, slave, "/b/sub/f"); got != "propagated\n" {
		t.Errorf("rslave bind: /b/sub/f = %q", got)
	}
	if r := e.docker(t, "exec", private, "cat", "/b/sub/f"); r.code == 0 {
		t.Errorf("rprivate bind saw a mount made on the host afterwards: %s", r)
	}

	vol := uniq(t) + "-v"
	t.Cleanup(func() { e.docker(t, "volume", "rm", "-f", vol) })
	r := must(t, e.docker(t, "run", "--rm", "--mount", "type=volume,source="+vol+",target=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=1m", "busybox", "sh", "-c", "df -k /v | tail -1"))
	if !strings.Contains(r.stdout, " 1024 ") {
		t.Errorf("df of the volume-opt tmpfs volume: %q", r.stdout)
	}
	if o := must(t, e.docker(t, "volume", "inspect", "-f", "{{.Options.type}} {{.Options.device}} {{.Options.o}}", vol)).stdout; o != "tmpfs tmpfs size=1m\n" {
		t.Errorf("volume-opt options: %q", o)
	}
}
