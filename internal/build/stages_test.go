package build

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// lockedBackend makes the fake safe for parallel stages; Run waits (up
// to a deadline) until `overlap` RUN steps are in flight together, which
// only happens when stages really run at the same time.
type lockedBackend struct {
	mu      sync.Mutex
	fb      *fakeBackend
	overlap int
	cond    *sync.Cond
	active  int
	maxSeen int
}

func (l *lockedBackend) ResolveImage(ctx context.Context, ref string) (Image, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fb.ResolveImage(ctx, ref)
}

func (l *lockedBackend) Run(ctx context.Context, step Step, run *container.Config, out io.Writer) (string, error) {
	l.mu.Lock()
	l.active++
	l.maxSeen = max(l.maxSeen, l.active)
	l.cond.Broadcast()
	deadline := time.Now().Add(2 * time.Second)
	for l.active < l.overlap && l.maxSeen < l.overlap && time.Now().Before(deadline) {
		go func() { time.Sleep(50 * time.Millisecond); l.cond.Broadcast() }()
		l.cond.Wait()
	}
	defer func() { l.active--; l.mu.Unlock() }()
	return l.fb.Run(ctx, step, run, out)
}

func (l *lockedBackend) Apply(ctx context.Context, step Step, layer io.Reader) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fb.Apply(ctx, step, layer)
}

func (l *lockedBackend) Mount(ctx context.Context, id string) (string, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fb.Mount(ctx, id)
}

type lockedCache struct {
	mu sync.Mutex
	m  memCache
}

func (c *lockedCache) Lookup(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Lookup(k)
}

func (c *lockedCache) Store(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.Store(k, v)
}

const parallelDockerfile = `FROM busybox AS a
RUN echo building a
FROM busybox AS unused
RUN echo never built
FROM busybox AS b
RUN echo building b
FROM busybox
COPY --from=a /run.log /a.log
COPY --from=b /run.log /b.log
`

// TestParallelStages: the stage nothing needs is skipped, a and b run at
// the same time with Parallel, and the output is the sequential one.
func TestParallelStages(t *testing.T) {
	build := func(parallel bool) (*lockedBackend, string, string) {
		lb := &lockedBackend{fb: newFakeBackend(t), overlap: map[bool]int{true: 2, false: 1}[parallel]}
		lb.cond = sync.NewCond(&lb.mu)
		df, err := Parse(strings.NewReader(parallelDockerfile))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		id, err := Build(context.Background(), lb, &lockedCache{m: memCache{}}, df,
			Options{ContextDir: t.TempDir(), Out: &out, Parallel: parallel})
		if err != nil {
			t.Fatalf("parallel=%t: %v\n%s", parallel, err, out.String())
		}
		return lb, stepIDs(out.String()), lb.fb.describe(id)
	}
	seq, seqOut, seqTree := build(false)
	par, parOut, parTree := build(true)
	if seq.maxSeen != 1 {
		t.Errorf("sequential build ran %d RUN steps at once", seq.maxSeen)
	}
	if par.maxSeen != 2 {
		t.Errorf("parallel build never ran a and b together (max %d in flight)", par.maxSeen)
	}
	if parOut != seqOut {
		t.Errorf("parallel output differs from sequential:\n%s\n---\n%s", parOut, seqOut)
	}
	if parTree != seqTree {
		t.Errorf("parallel image differs:\n%s\n---\n%s", parTree, seqTree)
	}
	for _, r := range append(seq.fb.runs, par.fb.runs...) {
		if strings.Contains(r, "never built") {
			t.Errorf("the unused stage ran: %q", r)
		}
	}
	if !strings.Contains(seqOut, "Step 1/7 : FROM busybox AS a") || !strings.Contains(seqOut, "Step 7/7 : COPY --from=b") {
		t.Errorf("step numbers do not skip the unused stage:\n%s", seqOut)
	}
}

// TestParallelStageFailure: a failing stage fails the build with its
// own error, not the cancellation of its sibling.
func TestParallelStageFailure(t *testing.T) {
	lb := &lockedBackend{fb: newFakeBackend(t), overlap: 1}
	lb.cond = sync.NewCond(&lb.mu)
	df, err := Parse(strings.NewReader("FROM busybox AS a\nRUN exit 3\nFROM busybox AS b\nRUN echo ok\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = Build(context.Background(), lb, &lockedCache{m: memCache{}}, df, Options{ContextDir: t.TempDir(), Out: &out, Parallel: true})
	if err == nil || !strings.Contains(err.Error(), "returned a non-zero code: 3") {
		t.Fatalf("error %v, want the RUN's exit 3\n%s", err, out.String())
	}
}
