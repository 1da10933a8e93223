package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// These scenarios race API calls on one container name against each other.

// containerDirs counts the per-container directories the daemon keeps.
func (e *env) containerDirs(t *testing.T) int {
	t.Helper()
	n := 0
	for _, d := range []string{filepath.Join(e.dataRoot, "containers"), filepath.Join(e.execRoot, "bundles")} {
		ents, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += len(ents)
	}
	return n
}

// TestRaceCreateSameName: of many concurrent creates with one name exactly
// one wins; the others get 409 Conflict and leave nothing behind.
func TestRaceCreateSameName(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	dirs := e.containerDirs(t)
	name := uniq(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}})
			ids[i], errs[i] = r.ID, err
		}()
	}
	wg.Wait()
	var winner string
	for i, err := range errs {
		switch {
		case err == nil:
			if winner != "" {
				t.Fatalf("two creates with name %s both succeeded: %s and %s", name, winner, ids[i])
			}
			winner = ids[i]
		case !cerrdefs.IsConflict(err):
			t.Errorf("a losing create must get a conflict, got %v", err)
		}
	}
	if winner == "" {
		t.Fatal("no create succeeded")
	}
	ins, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || ins.Container.ID != winner {
		t.Fatalf("the name resolves to %q (%v), want the winner %s", ins.Container.ID, err, winner)
	}
	if _, err := cli.ContainerRemove(ctx, winner, client.ContainerRemoveOptions{}); err != nil {
		t.Fatalf("remove the winner: %v", err)
	}
	if got := e.containerDirs(t); got != dirs {
		t.Fatalf("%d container directories before, %d after: the losers left some behind", dirs, got)
	}
}

// TestRaceCreateRemoveSameName interleaves creates and forced removes of
// one name; at every point at most one container holds it, and at the end
// nothing is left.
func TestRaceCreateRemoveSameName(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	dirs := e.containerDirs(t)
	name := uniq(t)
	var mu sync.Mutex
	created, removed := 0, 0
	for round := range 6 {
		var wg sync.WaitGroup
		var bad []error
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%2 == 0 {
					_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}}})
					if err == nil {
						mu.Lock()
						created++
						mu.Unlock()
					}
					if err == nil && i%4 == 0 {
						// a remove may have taken it already: then not found, or a conflict
						_, err = cli.ContainerStart(ctx, name, client.ContainerStartOptions{})
					}
				} else {
					_, err = cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true})
					if err == nil {
						mu.Lock()
						removed++
						mu.Unlock()
					}
				}
				// Losing a race is a conflict or a not-found, nothing else.
				if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
					mu.Lock()
					bad = append(bad, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for _, err := range bad {
			t.Errorf("round %d: unexpected error class: %v", round, err)
		}
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "^/"+name+"$")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > 1 {
			t.Fatalf("round %d: %d containers hold the name %s", round, len(list.Items), name)
		}
	}
	t.Logf("%d creates and %d removes won their races", created, removed)
	if created < 2 || removed < 1 {
		t.Fatalf("the races did not interleave: %d creates and %d removes succeeded", created, removed)
	}
	if removed > created {
		t.Fatalf("%d removes succeeded for %d containers created: concurrent removes of one container all reported success", removed, created)
	}
	if _, err := cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("final remove: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("after the final remove the name still resolves: %v", err)
	}
	if got := e.containerDirs(t); got != dirs {
		t.Fatalf("%d container directories before, %d after: leftovers", dirs, got)
	}
}

// TestRaceRemoveSameContainer: concurrent forced removes of one running
// container: one succeeds, the rest see not-found or conflict, and the
// container is gone with its files.
func TestRaceRemoveSameContainer(t *testing.T) {
	e := daemonEnv(t)
	cli := sdkClient(t, e)
	ctx := sdkContext(t)
	dirs := e.containerDirs(t)
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: uniq(t), Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err):
			t.Errorf("concurrent remove: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent removes of one container succeeded, want exactly 1", ok)
	}
	if _, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container still there: %v", err)
	}
	if got := e.containerDirs(t); got != dirs {
		t.Fatalf("%d container directories before, %d after", dirs, got)
	}
}

// TestRaceAttachBeforeStart runs short-lived containers in parallel with
// `run` and `start -a`: the CLI sends start as soon as its attach is
// answered, and no output of a process that exits at once may be lost.
func TestRaceAttachBeforeStart(t *testing.T) {
	e := daemonEnv(t)
	base := uniq(t)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				want := fmt.Sprintf("out-%d-%d\n", w, i)
				if r := e.docker(t, "run", "--rm", "busybox", "echo", strings.TrimSpace(want)); r.code != 0 || r.stdout != want {
					errs <- fmt.Sprintf("run: %s", r)
				}
				name := fmt.Sprintf("%s-%d-%d", base, w, i)
				if r := e.docker(t, "create", "--name", name, "--entrypoint", "printf", "busybox", want); r.code != 0 {
					errs <- fmt.Sprintf("create: %s", r)
					continue
				}
				if r := e.docker(t, "start", "-a", name); r.code != 0 || r.stdout != want {
					errs <- fmt.Sprintf("start -a: %s", r)
				}
				e.docker(t, "rm", "-f", name)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
