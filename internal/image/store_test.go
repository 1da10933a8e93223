package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/internal/archive"
	"berth/internal/errdefs"
	"berth/internal/fixture"

	"github.com/klauspost/compress/gzip"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestLoadDockerArchiveBusybox(t *testing.T) {
	s, _ := openStore(t)
	data := busyboxArchive(t, "busybox")
	var msgs []string
	start := time.Now()
	names, err := s.Load(context.Background(), bytes.NewReader(data), func(m string) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded busybox (%d bytes) in %v", len(data), time.Since(start))
	if len(names) != 1 || names[0] != "busybox:latest" || msgs[0] != "Loaded image: busybox:latest" {
		t.Fatalf("names %v msgs %v", names, msgs)
	}
	img, err := s.Resolve("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != digest.FromBytes(mustConfig(t, s, img.ID)) {
		t.Error("image ID is not the config digest")
	}
	if len(img.Layers) != 1 || img.Size <= 0 || img.Config.Config.Cmd[0] != "sh" {
		t.Errorf("image %+v", img)
	}
	for _, n := range []string{"busybox:latest", "docker.io/library/busybox", "docker.io/library/busybox:latest", img.ID.String(), img.ID.Encoded(), img.ID.Encoded()[:5], "sha256:" + img.ID.Encoded()[:7]} {
		if got, err := s.Resolve(n); err != nil || got.ID != img.ID {
			t.Errorf("Resolve(%q) = %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.snapshots.DiffPath(img.Layers[0].ChainID), "bin/busybox")); err != nil {
		t.Errorf("layer not unpacked: %v", err)
	}
	// Loading again changes nothing and is quick.
	start = time.Now()
	load(t, s, data)
	t.Logf("reloaded in %v", time.Since(start))
}

func mustConfig(t *testing.T, s *Store, id digest.Digest) []byte {
	b, err := s.content.ReadAll(id, maxConfigSize)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadOCILayout(t *testing.T) {
	s, _ := openStore(t)
	var buf bytes.Buffer
	if err := fixture.OCILayout(&buf, "busybox:oci"); err != nil {
		t.Skip(err)
	}
	if names := load(t, s, buf.Bytes()); len(names) != 1 || names[0] != "busybox:oci" {
		t.Fatalf("names %v", names)
	}
	// Nested index with platforms, gzip layers, a registry name.
	ti := testImage{layers: [][]byte{layerTar(t, reg("a", "1")), layerTar(t, reg("b", "2"))}, compress: gzipBytes, cmd: "x"}
	names := load(t, s, ociArchive(t, "127.0.0.1:5000/team/app:v1", true, ti))
	if len(names) != 1 || names[0] != "127.0.0.1:5000/team/app:v1" {
		t.Fatalf("names %v", names)
	}
	img, err := s.Resolve("127.0.0.1:5000/team/app:v1")
	if err != nil || len(img.Layers) != 2 {
		t.Fatalf("resolve: %v", err)
	}
	// Untagged OCI image: "Loaded image ID".
	ti.cmd = "untagged"
	names = load(t, s, ociArchive(t, "", false, ti))
	if len(names) != 1 || !strings.HasPrefix(names[0], "sha256:") {
		t.Fatalf("names %v", names)
	}
}

func TestLoadCompressedLayersAndArchive(t *testing.T) {
	s, _ := openStore(t)
	base := layerTar(t, dirEnt("etc/"), reg("etc/a", "a"))
	for i, c := range []func([]byte) []byte{nil, gzipBytes, zstdBytes} {
		ti := testImage{tags: []string{"comp:" + string(rune('a'+i))}, layers: [][]byte{base, layerTar(t, reg("f", strings.Repeat("z", i+1)))}, compress: c, cmd: "c"}
		load(t, s, dockerArchive(t, ti))
	}
	// The whole archive gzipped, as `docker save | gzip`.
	load(t, s, gzipBytes(dockerArchive(t, testImage{tags: []string{"comp:gz"}, layers: [][]byte{base}, cmd: "gz"})))
	imgs, _ := s.List()
	if len(imgs) != 4 {
		t.Fatalf("%d images", len(imgs))
	}
	chains, _ := s.snapshots.List()
	if len(chains) != 4 { // base shared by all, plus three tops
		t.Errorf("%d snapshots, want 4", len(chains))
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	load(t, s, busyboxArchive(t, "busybox"))
	ti := testImage{tags: []string{"two:layers"}, layers: [][]byte{layerTar(t, reg("a", "1")), layerTar(t, reg("b", "2"))}, compress: zstdBytes, cmd: "two"}
	load(t, s, dockerArchive(t, ti))
	orig, _ := s.Resolve("busybox")
	two, _ := s.Resolve("two:layers")
	var out bytes.Buffer
	if err := s.Save(context.Background(), &out, []string{"busybox", "two:layers", two.ID.Encoded()[:8]}); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	tr := tarNames(t, out.Bytes())
	for _, n := range tr {
		files[n] = true
	}
	for _, want := range []string{"manifest.json", "index.json", "oci-layout", "repositories", "blobs/sha256/" + orig.ID.Encoded()} {
		if !files[want] {
			t.Errorf("saved archive lacks %s: %v", want, tr)
		}
	}
	s2, _ := openStore(t)
	names := load(t, s2, out.Bytes())
	if strings.Join(names, ",") != "busybox:latest,two:layers" {
		t.Errorf("names %v", names)
	}
	for _, n := range []string{"busybox", "two:layers"} {
		a, _ := s.Resolve(n)
		b, err := s2.Resolve(n)
		if err != nil || a.ID != b.ID || a.Size != b.Size {
			t.Errorf("%s: round trip changed the image: %v", n, err)
		}
	}
	// The OCI half alone loads too.
	var oci bytes.Buffer
	newTarCopy(t, &oci, out.Bytes(), func(name string) bool { return name != "manifest.json" })
	s3, _ := openStore(t)
	names = load(t, s3, oci.Bytes())
	if strings.Join(names, ",") != "busybox:latest,two:layers" {
		t.Errorf("OCI half: names %v", names)
	}
	// Saving is deterministic.
	var again bytes.Buffer
	s.Save(context.Background(), &again, []string{"busybox", "two:layers", two.ID.Encoded()[:8]})
	if !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Error("two saves differ")
	}
	if err := s.Save(context.Background(), io.Discard, []string{"nope"}); !errdefs.IsNotFound(err) {
		t.Errorf("save of a missing image: %v", err)
	}
}

func TestImportWithChanges(t *testing.T) {
	s, _ := openStore(t)
	rootfs := t.TempDir()
	if err := fixture.BusyboxRootfs(rootfs); err != nil {
		t.Skip(err)
	}
	var tarball bytes.Buffer
	gz := gzip.NewWriter(&tarball)
	if err := archive.WriteTree(context.Background(), gz, rootfs, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	changes := []string{
		`CMD ["/bin/sh", "-c", "echo hi"]`, `ENTRYPOINT /bin/true`, `ENV A=1 B="two words"`, `ENV C legacy value`,
		`EXPOSE 80 53/udp 8000-8001`, `LABEL team=core "x y"=z`, `ONBUILD RUN true`, `STOPSIGNAL SIGINT`,
		`USER nobody`, `VOLUME ["/data", "/logs"]`, `WORKDIR /srv`, `WORKDIR app`,
	}
	id, err := s.Import(context.Background(), &tarball, "imported:v1", changes, "")
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve("imported:v1")
	if err != nil || img.ID != id {
		t.Fatalf("resolve: %v", err)
	}
	c := img.Config.Config
	checks := map[string]bool{
		"cmd":        strings.Join(c.Cmd, "|") == "/bin/sh|-c|echo hi",
		"entrypoint": strings.Join(c.Entrypoint, "|") == "/bin/sh|-c|/bin/true",
		"env":        strings.Join(c.Env, "|") == "A=1|B=two words|C=legacy value",
		"expose":     len(c.ExposedPorts) == 4,
		"udp":        hasKey(c.ExposedPorts, "53/udp"),
		"label":      c.Labels["team"] == "core" && c.Labels["x y"] == "z",
		"onbuild":    len(img.DockerExt.OnBuild) == 1 && img.DockerExt.OnBuild[0] == "RUN true",
		"stopsignal": c.StopSignal == "SIGINT",
		"user":       c.User == "nobody",
		"volumes":    hasKey(c.Volumes, "/data") && hasKey(c.Volumes, "/logs"),
		"workdir":    c.WorkingDir == "/srv/app",
		"history":    len(img.Config.History) == 1 && img.Config.History[0].Comment == "Imported from -",
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("%s wrong: %+v", k, c)
		}
	}
	if _, err := s.Import(context.Background(), strings.NewReader(""), "", []string{"RUN true"}, ""); !errdefs.IsInvalidParameter(err) {
		t.Errorf("RUN accepted as a change: %v", err)
	}
	if _, err := ApplyChanges(dockerspec.DockerOCIImageConfig{}, []string{`ENV "unterminated`}); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }

func TestTagUntagResolve(t *testing.T) {
	s, _ := openStore(t)
	load(t, s, dockerArchive(t, testImage{tags: []string{"one"}, layers: [][]byte{layerTar(t, reg("a", "1"))}, cmd: "1"}))
	load(t, s, dockerArchive(t, testImage{tags: []string{"two"}, layers: [][]byte{layerTar(t, reg("a", "1"))}, cmd: "2"}))
	one, _ := s.Resolve("one")
	two, _ := s.Resolve("two")
	for _, ref := range []string{"docker.io/library/foo", "127.0.0.1:5000/a:b", "apicap/x:v1"} {
		if err := s.Tag(one.ID, ref); err != nil {
			t.Fatal(err)
		}
	}
	one, _ = s.Resolve("one")
	if strings.Join(one.RepoTags, ",") != "127.0.0.1:5000/a:b,apicap/x:v1,foo:latest,one:latest" {
		t.Errorf("RepoTags %v", one.RepoTags)
	}
	// Retagging moves the tag.
	if err := s.Tag(two.ID, "foo"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Resolve("docker.io/library/foo:latest"); got.ID != two.ID {
		t.Error("tag did not move")
	}
	if removed, err := s.Untag("foo:latest"); !removed || err != nil {
		t.Errorf("untag: %v %v", removed, err)
	}
	if removed, _ := s.Untag("foo"); removed {
		t.Error("untag twice")
	}
	_, err := s.Resolve("nonexist")
	if !errdefs.IsNotFound(err) || err.Error() != "No such image: nonexist:latest" {
		t.Errorf("missing: %v", err)
	}
	if err := s.Tag(one.ID, "bad//ref"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("bad ref: %v", err)
	}
	// A one-character prefix resolves when unique, not when shared.
	if one.ID.Encoded()[0] != two.ID.Encoded()[0] {
		if got, err := s.Resolve(one.ID.Encoded()[:1]); err != nil || got.ID != one.ID {
			t.Errorf("1-char prefix: %v", err)
		}
	}
	// The records survive a reopen.
	s2, err := Open(s.root, s.db)
	if err != nil {
		t.Fatal(err)
	}
	if imageIDs(t, s2) != imageIDs(t, s) {
		t.Errorf("reopen: %s != %s", imageIDs(t, s2), imageIDs(t, s))
	}
}

func TestDeleteReclaimsExactly(t *testing.T) {
	t.Run("gzip", func(t *testing.T) { testDeleteReclaims(t, gzipBytes) })
	t.Run("uncompressed", func(t *testing.T) { testDeleteReclaims(t, nil) })
}

func testDeleteReclaims(t *testing.T, compress func([]byte) []byte) {
	s, root := openStore(t)
	empty := du(t, root)
	base := layerTar(t, dirEnt("usr/"), reg("usr/big", strings.Repeat("b", 300000)))
	load(t, s, dockerArchive(t, testImage{tags: []string{"base"}, layers: [][]byte{base}, compress: compress, cmd: "b"}))
	withBase := du(t, root)
	load(t, s, dockerArchive(t, testImage{tags: []string{"top"}, layers: [][]byte{base, layerTar(t, reg("usr/top", strings.Repeat("t", 200000)))}, compress: compress, cmd: "t"}))
	both := du(t, root)
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.LayersSize != both-empty {
		t.Errorf("Usage.LayersSize %d, du says %d", u.LayersSize, both-empty)
	}
	top, _ := s.Resolve("top")
	if _, err := s.Untag("top"); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune(context.Background(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 1 || rep.ImagesDeleted[0].Deleted != top.ID.String() {
		t.Errorf("prune report %+v", rep)
	}
	after := du(t, root)
	if int64(rep.SpaceReclaimed) != both-after || after != withBase {
		t.Errorf("reclaimed %d, du went %d -> %d (base alone %d)", rep.SpaceReclaimed, both, after, withBase)
	}
	b, _ := s.Resolve("base")
	if err := s.Delete(b.ID); err != nil {
		t.Fatal(err)
	}
	if got := du(t, root); got != empty {
		t.Errorf("after deleting everything du = %d, empty store %d", got, empty)
	}
	if err := s.Delete(b.ID); !errdefs.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
}

func TestMaliciousLoadsLeaveStoreUntouched(t *testing.T) {
	s, root := openStore(t)
	load(t, s, dockerArchive(t, testImage{tags: []string{"keep"}, layers: [][]byte{layerTar(t, reg("k", "k"))}, cmd: "k"}))
	before, beforeIDs := tree(t, root), imageIDs(t, s)
	good := layerTar(t, reg("ok", "fine"))
	huge := func() []byte {
		var b bytes.Buffer
		tw := newRawTar(&b)
		tw.header("big", 10<<30)
		b.Write(make([]byte, 2048))
		return b.Bytes()
	}()
	bad := map[string][]byte{
		"dotdot":         dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, layerTar(t, reg("../../../../tmp/evil", "x"))}, cmd: "e"}),
		"absolute":       dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, layerTar(t, reg("/tmp/evil", "x"))}, cmd: "e"}),
		"symlink-write":  dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, layerTar(t, symEnt("l", "/tmp"), reg("l/evil", "x"))}, cmd: "e"}),
		"hardlink-out":   dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, layerTar(t, linkEnt("h", "../../../../etc/shadow"))}, cmd: "e"}),
		"device":         dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, layerTar(t, ent{Hdr: blockDev("dev/sda")})}, cmd: "e"}),
		"huge-truncated": dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good, huge}, cmd: "e"}),
		"diffid":         dockerArchive(t, testImage{tags: []string{"evil"}, layers: [][]byte{good}, diffIDs: []digest.Digest{digest.FromString("other")}, cmd: "e"}),
		"truncated":      func() []byte { a := busyboxArchive(t, "evil"); return a[:len(a)/2] }(),
		"not-a-tar":      []byte("hello, this is not a tar archive at all, just text padding it out to 512 bytes"),
		"no-manifest":    layerTar(t, reg("x", "y")),
		"blob-mismatch": func() []byte {
			a := ociArchive(t, "evil:x", false, testImage{layers: [][]byte{good}, cmd: "e"})
			return bytes.Replace(a, []byte("fine"), []byte("FINE"), 1)
		}(),
		"escape-entry": layerTar(t, reg("../manifest.json", "[]")),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := s.Load(context.Background(), bytes.NewReader(data), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Logf("refused: %v", err)
			if after := tree(t, root); after != before {
				t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if ids := imageIDs(t, s); ids != beforeIDs {
				t.Errorf("images changed: %s", ids)
			}
			if _, err := os.Stat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil was written")
			}
		})
	}
	if _, err := s.Load(context.Background(), bytes.NewReader(bad["truncated"]), nil); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("truncated archive error should say unexpected EOF: %v", err)
	}
}

func TestConcurrentLoadsShareLayers(t *testing.T) {
	s, root := openStore(t)
	big := layerTar(t, reg("big", strings.Repeat("x", 4<<20)))
	mid := layerTar(t, reg("mid", "m"))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		data := dockerArchive(t, testImage{tags: []string{"c:" + string(rune('a'+i))}, layers: [][]byte{big, mid, layerTar(t, reg("top", string(rune('a'+i%2))))}, compress: gzipBytes, cmd: "c"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Load(context.Background(), bytes.NewReader(data), nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	chains, _ := s.snapshots.List()
	if len(chains) != 4 { // big, big+mid, two different tops
		t.Errorf("%d snapshots, want 4", len(chains))
	}
	ents, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	if len(ents) != 4 {
		t.Errorf("snapshot dir holds %d entries (debris?)", len(ents))
	}
	imgs, _ := s.List()
	if len(imgs) != 2 {
		t.Errorf("%d images, want 2", len(imgs))
	}
}

func TestOpenRemovesCrashDebris(t *testing.T) {
	s, root := openStore(t)
	load(t, s, dockerArchive(t, testImage{tags: []string{"keep"}, layers: [][]byte{layerTar(t, reg("k", "k"))}, cmd: "k"}))
	clean := tree(t, root)
	// What a kill -9 could leave at any point.
	writeFile(t, filepath.Join(root, "content/ingest/blob-12345"), "half a blob")
	writeFile(t, filepath.Join(root, "snapshots/ingest-0011223344556677/diff/usr/half"), "half a layer")
	half := digest.FromString("half")
	writeFile(t, filepath.Join(root, "snapshots", half.Encoded(), "diff/x"), "renamed, marker missing")
	orphan := digest.FromString("orphan")
	writeFile(t, filepath.Join(root, "snapshots", orphan.Encoded(), "diff/x"), "complete but never recorded")
	writeFile(t, filepath.Join(root, "snapshots", orphan.Encoded(), "committed"), orphan.String())
	blob := "an unrecorded blob"
	writeFile(t, filepath.Join(root, "content/blobs/sha256", digest.FromString(blob).Encoded()), blob)
	// A layer record with no image (crash between transactions is not
	// possible, but a record left by an older version should go too).
	s.db.Update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(layerRecord{DiffID: orphan, Blob: digest.FromString(blob)})
		return tx.Bucket(bucketLayers).Put([]byte(orphan), v)
	})
	s2, err := Open(root, s.db)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree(t, root); got != clean {
		t.Errorf("debris left:\n%s\nwant:\n%s", got, clean)
	}
	if _, err := s2.Resolve("keep"); err != nil {
		t.Error(err)
	}
}

func TestHistoryAndPrune(t *testing.T) {
	s, _ := openStore(t)
	load(t, s, dockerArchive(t, testImage{tags: []string{"h"}, layers: [][]byte{layerTar(t, reg("a", "12345"))}, cmd: "h"}))
	img, _ := s.Resolve("h")
	hist, err := s.History(img.ID)
	if err != nil || len(hist) != 1 || hist[0].ID != img.ID.String() || hist[0].Size != 5 || hist[0].Tags[0] != "h:latest" {
		t.Errorf("history %+v %v", hist, err)
	}
	rep, err := s.Prune(context.Background(), true, nil)
	if err != nil || len(rep.ImagesDeleted) != 0 {
		t.Errorf("dangling prune removed a tagged image: %+v", rep)
	}
	rep, err = s.Prune(context.Background(), false, nil)
	if err != nil || len(rep.ImagesDeleted) != 2 || rep.ImagesDeleted[0].Untagged != "h:latest" || rep.SpaceReclaimed == 0 {
		t.Errorf("prune -a: %+v %v", rep, err)
	}
}

// TestContainerRootfs: whiteouts across two layers through a real overlay
// mount, then the container's changes, size and commit.
func TestContainerRootfs(t *testing.T) {
	requireRoot(t)
	s, _ := openStore(t)
	l1 := layerTar(t, dirEnt("a/"), reg("a/file", "gone"), reg("a/keep", "kept"), dirEnt("b/"), reg("b/x", "hidden"), reg("c", "c"))
	l2 := layerTar(t, dirEnt("a/"), reg("a/.wh.file", ""), dirEnt("b/"), reg("b/.wh..wh..opq", ""), reg("b/y", "new"), reg(".wh.c", ""))
	load(t, s, dockerArchive(t, testImage{tags: []string{"wh"}, layers: [][]byte{l1, l2}, cmd: "x"}))
	img, _ := s.Resolve("wh")
	target := t.TempDir()
	if err := s.PrepareRootfs("c1", img); err != nil {
		t.Fatal(err)
	}
	if err := s.MountRootfs("c1", img, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.UnmountRootfs(target) })
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(target, p)); return err == nil }
	if exists("a/file") || exists("b/x") || exists("c") || !exists("a/keep") || !exists("b/y") {
		t.Errorf("merged view wrong: a/file %v b/x %v c %v a/keep %v b/y %v", exists("a/file"), exists("b/x"), exists("c"), exists("a/keep"), exists("b/y"))
	}
	if err := s.Delete(img.ID); !errdefs.IsConflict(err) {
		t.Errorf("delete of an image in use: %v", err)
	}
	writeFile(t, filepath.Join(target, "new/file"), "12345")
	writeFile(t, filepath.Join(target, "a/keep"), "changed")
	os.Remove(filepath.Join(target, "b/y"))
	if n, err := s.RootfsSize("c1"); err != nil || n != 5+7 {
		t.Errorf("RootfsSize = %d %v", n, err)
	}
	changes, err := s.Changes("c1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]container.ChangeType{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	want := map[string]container.ChangeType{"/a": container.ChangeModify, "/a/keep": container.ChangeModify, "/b": container.ChangeModify,
		"/b/y": container.ChangeDelete, "/new": container.ChangeAdd, "/new/file": container.ChangeAdd}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("change %s = %v, want %v (all: %v)", p, got[p], k, changes)
		}
	}
	cfg := img.DockerConfig()
	cfg.Cmd = []string{"committed"}
	id, err := s.Commit(context.Background(), "c1", img, cfg, "me", "a commit")
	if err != nil {
		t.Fatal(err)
	}
	s.Tag(id, "committed:v1")
	if err := s.UnmountRootfs(target); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs("c1"); err != nil {
		t.Fatal(err)
	}
	cimg, _ := s.Resolve("committed:v1")
	if len(cimg.Layers) != 3 || cimg.Parent != img.ID || cimg.Config.Author != "me" || cimg.Config.Config.Cmd[0] != "committed" {
		t.Errorf("committed image %+v", cimg)
	}
	if err := s.Delete(img.ID); !errdefs.IsConflict(err) {
		t.Errorf("delete of a parent image: %v", err)
	}
	// The committed image's root shows the container's changes.
	if err := s.PrepareRootfs("c2", cimg); err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs("c2")
	if err := s.MountRootfs("c2", cimg, target); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(target, "a/keep"))
	if string(b) != "changed" || exists("b/y") || exists("b/x") || !exists("new/file") {
		t.Errorf("committed view wrong: a/keep=%q b/y %v", b, exists("b/y"))
	}
	s.UnmountRootfs(target)
	// Save and load the committed image elsewhere: same ID.
	var out bytes.Buffer
	if err := s.Save(context.Background(), &out, []string{"committed:v1"}); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t)
	load(t, s2, out.Bytes())
	if c2, err := s2.Resolve("committed:v1"); err != nil || c2.ID != id {
		t.Errorf("committed image after save/load: %v", err)
	}
}

func TestMountManyLayersAndEmpty(t *testing.T) {
	requireRoot(t)
	s, _ := openStore(t)
	var layers [][]byte
	for i := 0; i < 70; i++ {
		layers = append(layers, layerTar(t, reg("f"+string(rune('A'+i%26))+string(rune('a'+i/26)), "x")))
	}
	load(t, s, dockerArchive(t, testImage{tags: []string{"many"}, layers: layers, cmd: "m"}))
	img, _ := s.Resolve("many")
	target := t.TempDir()
	s.PrepareRootfs("m1", img)
	defer s.RemoveRootfs("m1")
	if err := s.MountRootfs("m1", img, target); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(target)
	s.UnmountRootfs(target)
	if len(ents) != 70 {
		t.Errorf("%d entries through a 70-layer mount", len(ents))
	}
	// No layers at all: an empty lower dir.
	load(t, s, dockerArchive(t, testImage{tags: []string{"empty"}, cmd: "e"}))
	e, err := s.Resolve("empty")
	if err != nil {
		t.Fatal(err)
	}
	s.PrepareRootfs("e1", e)
	defer s.RemoveRootfs("e1")
	if err := s.MountRootfs("e1", e, target); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	unix.Statfs(target, &st)
	s.UnmountRootfs(target)
	if st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Errorf("not an overlay: %x", st.Type)
	}
}

func TestLoadCancelled(t *testing.T) {
	s, root := openStore(t)
	before := tree(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Load(ctx, bytes.NewReader(busyboxArchive(t, "busybox")), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if tree(t, root) != before {
		t.Error("cancelled load left files")
	}
}
