package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestDockerDiffCommitExport(t *testing.T) {
	e := daemonEnv(t)
	name := uniq(t)
	img := "committed/" + name + ":v1"
	t.Cleanup(func() { e.docker(t, "rm", "-f", name); e.docker(t, "rmi", "-f", img) })
	must(t, e.docker(t, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo data > /newfile; rm /etc/group; exec sleep 300"))
	waitFor(t, func() bool { return strings.Contains(e.docker(t, "diff", name).stdout, "A /newfile") })
	diff := must(t, e.docker(t, "diff", name)).stdout
	if !strings.Contains(diff, "D /etc/group") || !strings.Contains(diff, "C /etc") {
		t.Fatalf("diff: %q", diff)
	}
	id := strings.TrimSpace(must(t, e.docker(t, "commit", "-c", "ENV COMMITTED=yes", "-m", "a message", name, img)).stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	r := must(t, e.docker(t, "run", "--rm", img, "sh", "-c", "cat /newfile; echo $COMMITTED; test -e /etc/group || echo nogroup"))
	if r.stdout != "data\nyes\nnogroup\n" {
		t.Fatalf("committed image content: %q", r.stdout)
	}
	h := must(t, e.docker(t, "history", "--format", "{{.Comment}}", img)).stdout
	if !strings.HasPrefix(h, "a message") {
		t.Fatalf("history comment: %q", h)
	}
	must(t, e.docker(t, "stop", "-t", "0", name))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := e.run(ctx, "", dockerCLI(t), "export", name)
	if res.code != 0 {
		t.Fatalf("export: %s", res)
	}
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader([]byte(res.stdout)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export is not a valid tar: %v", err)
		}
		names[strings.TrimPrefix(h.Name, "./")] = true
	}
	if !names["newfile"] || !names["bin/busybox"] || names["etc/group"] {
		t.Fatalf("export content wrong: newfile=%v busybox=%v group=%v (%d entries)", names["newfile"], names["bin/busybox"], names["etc/group"], len(names))
	}
}
