package build

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Stage scheduling, as BuildKit does it: only the stages the target
// needs (through FROM, COPY --from and RUN --mount from=) are built, and
// with Options.Parallel the independent ones run at the same time. The
// output stays the sequential one: stages print in Dockerfile order, a
// later stage's lines held back until the stages before it are done, and
// step numbers are fixed up front.

// stageDeps lists, for each stage, the earlier stages it reads. A name or
// index naming no earlier stage is an image, as in the classic builder.
func stageDeps(stages []instructions.Stage, meta map[string]string, lex *shell.Lex) [][]int {
	env := shell.EnvsFromSlice(envList(meta))
	resolve := func(i int, ref string) (int, bool) {
		if v, _, err := lex.ProcessWord(ref, env); err == nil {
			ref = v
		}
		if n, err := strconv.Atoi(ref); err == nil {
			return n, n >= 0 && n < i
		}
		best := -1
		for j := 0; j < i; j++ {
			if stages[j].Name != "" && strings.EqualFold(stages[j].Name, ref) {
				best = j
			}
		}
		return best, best >= 0
	}
	deps := make([][]int, len(stages))
	for i, s := range stages {
		refs := []string{s.BaseName}
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					refs = append(refs, c.From)
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						refs = append(refs, m.From)
					}
				}
			}
		}
		for _, r := range refs {
			if j, ok := resolve(i, r); ok {
				deps[i] = append(deps[i], j)
			}
		}
	}
	return deps
}

// neededStages are the stages target depends on, itself included, in
// Dockerfile order.
func neededStages(deps [][]int, target int) []int {
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		for _, j := range deps[i] {
			visit(j)
		}
	}
	visit(target)
	var out []int
	for i := 0; i <= target; i++ {
		if need[i] {
			out = append(out, i)
		}
	}
	return out
}

// orderedOut serialises the stages' output in stage order: the earliest
// unfinished stage writes through, the others are buffered.
type orderedOut struct {
	mu   sync.Mutex
	out  io.Writer
	bufs []bytes.Buffer
	done []bool
	cur  int
}

func newOrderedOut(out io.Writer, n int) *orderedOut {
	return &orderedOut{out: out, bufs: make([]bytes.Buffer, n), done: make([]bool, n)}
}

// stageWriter is one stage's output.
type stageWriter struct {
	o *orderedOut
	k int
}

func (w stageWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	if w.k == w.o.cur {
		return w.o.out.Write(p)
	}
	return w.o.bufs[w.k].Write(p)
}

// finish marks stage k done and lets the next stages' output through.
func (o *orderedOut) finish(k int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done[k] = true
	for o.cur < len(o.done) && o.done[o.cur] {
		o.cur++
		if o.cur < len(o.done) {
			o.out.Write(o.bufs[o.cur].Bytes())
			o.bufs[o.cur].Reset()
		}
	}
}

// buildStages builds the needed stages and returns the image of each.
func (b *builder) buildStages(ctx context.Context, stages []instructions.Stage, order []int) (map[int]string, error) {
	start := map[int]int{} // stage -> the step number before its FROM
	for _, i := range order {
		start[i] = b.total
		b.total += 1 + len(stages[i].Commands)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := newOrderedOut(b.out, len(order))
	var (
		mu       sync.Mutex
		ids      = map[int]string{}
		firstErr error
		done     = map[int]chan struct{}{}
		wg       sync.WaitGroup
	)
	for _, i := range order {
		done[i] = make(chan struct{})
	}
	deps := stageDeps(stages, b.meta, b.lex)
	run := func(k, i int) {
		defer close(done[i])
		defer out.finish(k)
		for _, j := range deps[i] {
			<-done[j]
		}
		mu.Lock()
		failed := firstErr != nil
		// The references a stage sees: the stages before it, as built.
		sb := *b
		sb.stages = map[string]string{}
		for j := 0; j < i; j++ {
			if id, ok := ids[j]; ok {
				sb.stages[strconv.Itoa(j)] = id
				if stages[j].Name != "" {
					sb.stages[strings.ToLower(stages[j].Name)] = id
				}
			}
		}
		mu.Unlock()
		if failed {
			return
		}
		sb.out = stageWriter{o: out, k: k}
		sb.lex = shell.NewLex(b.escape)
		sb.step = start[i]
		sb.pending, sb.pendingFiles = pendingInputs{}, nil
		id, err := sb.buildStage(ctx, stages[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil || (errors.Is(firstErr, context.Canceled) && !errors.Is(err, context.Canceled)) {
				firstErr = err
			}
			cancel()
			return
		}
		ids[i] = id
	}
	for k, i := range order {
		if !b.opts.Parallel {
			run(k, i)
			if firstErr != nil {
				break
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(k, i)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	b.step = b.total
	return ids, nil
}
