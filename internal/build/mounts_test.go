package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func buildString(t *testing.T, fb *fakeBackend, dockerfile string, opts Options) (string, error) {
	t.Helper()
	df, err := Parse(strings.NewReader(dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	return Build(context.Background(), fb, memCache{}, df, opts)
}

// TestRunMountCachePersists: a cache mount is the same host directory in
// every build (keyed by id, else target), so what a RUN leaves there is
// there for the next build's RUN.
func TestRunMountCachePersists(t *testing.T) {
	root := t.TempDir()
	fb := newFakeBackend(t)
	df := "FROM busybox\nRUN --mount=type=cache,target=/var/cache/apk echo build\nRUN --mount=type=cache,id=shared,target=/a --mount=type=cache,id=shared,target=/b echo two\n"
	for i := range 2 {
		if _, err := buildString(t, fb, df, Options{ContextDir: t.TempDir(), CacheMountRoot: root, NoCache: true}); err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		if i == 0 {
			if err := os.WriteFile(filepath.Join(fb.mounts[0][0].Source, "pkg"), []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(fb.mounts) != 4 {
		t.Fatalf("recorded %d RUNs, want 4", len(fb.mounts))
	}
	first, second := fb.mounts[0][0], fb.mounts[2][0]
	if first.Type != mount.TypeBind || first.Target != "/var/cache/apk" || first.ReadOnly || !strings.HasPrefix(first.Source, root) {
		t.Errorf("cache mount is %+v, want a writable bind under %s at /var/cache/apk", first, root)
	}
	if second.Source != first.Source {
		t.Errorf("second build's cache dir %s, first %s", second.Source, first.Source)
	}
	if b, err := os.ReadFile(filepath.Join(second.Source, "pkg")); err != nil || string(b) != "kept" {
		t.Errorf("cache contents not kept: %q, %v", b, err)
	}
	shared := fb.mounts[1]
	if len(shared) != 2 || shared[0].Source != shared[1].Source || shared[0].Source == first.Source {
		t.Errorf("id=shared mounts %+v: want one dir for both targets, apart from /var/cache/apk's", shared)
	}
	if _, err := buildString(t, newFakeBackend(t), df, Options{ContextDir: t.TempDir()}); err == nil {
		t.Error("cache mount without a CacheMountRoot succeeded")
	}
}

func TestRunMountTmpfsAndBind(t *testing.T) {
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	fb := newFakeBackend(t)
	df := "FROM busybox AS tools\nFROM busybox\n" +
		"RUN --mount=type=tmpfs,target=/scratch,size=1048576 --mount=type=bind,source=src,target=/src --mount=type=bind,from=tools,source=/bin,target=/tools echo hi\n"
	if _, err := buildString(t, fb, df, Options{ContextDir: ctxDir}); err != nil {
		t.Fatal(err)
	}
	ms := fb.mounts[0]
	if len(ms) != 3 {
		t.Fatalf("mounts %+v, want 3", ms)
	}
	if ms[0].Type != mount.TypeTmpfs || ms[0].Target != "/scratch" || ms[0].TmpfsOptions == nil || ms[0].TmpfsOptions.SizeBytes != 1<<20 {
		t.Errorf("tmpfs mount %+v", ms[0])
	}
	if ms[1].Type != mount.TypeBind || ms[1].Source != filepath.Join(ctxDir, "src") || ms[1].Target != "/src" || !ms[1].ReadOnly {
		t.Errorf("context bind %+v", ms[1])
	}
	if ms[2].Type != mount.TypeBind || filepath.Base(ms[2].Source) != "bin" || ms[2].Target != "/tools" || !ms[2].ReadOnly {
		t.Errorf("stage bind %+v", ms[2])
	}
	if _, err := os.Stat(filepath.Join(ms[2].Source, "sh")); err != nil {
		t.Errorf("stage bind source lacks the stage's /bin/sh: %v", err)
	}
	// A bind source cannot leave the context.
	if _, err := buildString(t, newFakeBackend(t), "FROM busybox\nRUN --mount=type=bind,source=../../etc,target=/x true\n", Options{ContextDir: ctxDir}); err == nil {
		t.Error("bind of ../../etc outside the context succeeded")
	}
}

// TestRunMountSecret: the secret is bind-mounted read-only for the RUN
// only: it is in neither the image's files nor its config.
func TestRunMountSecret(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cr3t-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	fb := newFakeBackend(t)
	df := "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\nRUN --mount=type=secret,id=tok,target=/etc/tok,required cat /etc/tok\n"
	id, err := buildString(t, fb, df, Options{ContextDir: t.TempDir(), Secrets: map[string]string{"tok": secret}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/run/secrets/tok", "/etc/tok"}
	for i, ms := range fb.mounts {
		if len(ms) != 1 || ms[0].Source != secret || ms[0].Target != want[i] || !ms[0].ReadOnly {
			t.Errorf("RUN %d mounts %+v, want %s read-only at %s", i, ms, secret, want[i])
		}
	}
	if d := fb.describe(id); strings.Contains(d, "s3cr3t") {
		t.Errorf("the secret leaked into the image:\n%s", d)
	}
	_, err = buildString(t, newFakeBackend(t), "FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n", Options{ContextDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "secret tok not provided") {
		t.Errorf("missing required secret: %v", err)
	}
	// Not required and not given: the RUN goes ahead without it.
	fb2 := newFakeBackend(t)
	if _, err := buildString(t, fb2, "FROM busybox\nRUN --mount=type=secret,id=opt true\n", Options{ContextDir: t.TempDir()}); err != nil || len(fb2.mounts[0]) != 0 {
		t.Errorf("optional missing secret: %v, mounts %+v", err, fb2.mounts)
	}
}
