package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// defaultDetachKeys is ctrl-p,ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// errEscape is returned by the input copy when the user typed the detach
// key sequence; docker prints its text for `attach`.
var errEscape = errors.New("read escape sequence")

// parseDetachKeys turns "ctrl-p,ctrl-q" or "a,ctrl-@" into bytes, like
// docker: each comma-separated item is one character or ctrl-<char>.
func parseDetachKeys(keys string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach keys (%s) provided", keys)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys (%s) provided", keys)
		}
	}
	return out, nil
}

// escapeProxy passes input through until the detach sequence appears.
// Bytes that might start the sequence are held back until later input shows
// whether the sequence completes; if it does not, they are released.
type escapeProxy struct {
	r       io.Reader
	keys    []byte
	matched int    // how many bytes of keys are held back
	pending []byte // bytes ready to be returned
	err     error  // returned once pending is drained
}

func newEscapeProxy(r io.Reader, keys []byte) *escapeProxy {
	return &escapeProxy{r: r, keys: keys}
}

func (p *escapeProxy) Read(buf []byte) (int, error) {
	for {
		if len(p.pending) > 0 {
			n := copy(buf, p.pending)
			p.pending = p.pending[n:]
			return n, nil
		}
		if p.err != nil {
			return 0, p.err
		}
		tmp := make([]byte, max(len(buf), 1))
		n, err := p.r.Read(tmp)
		for _, b := range tmp[:n] {
			if b == p.keys[p.matched] {
				p.matched++
				if p.matched == len(p.keys) {
					// Detach: what came before is delivered, the rest dropped.
					p.matched = 0
					p.err = errEscape
					break
				}
				continue
			}
			if p.matched > 0 {
				p.pending = append(p.pending, p.keys[:p.matched]...)
				p.matched = 0
				if b == p.keys[0] {
					p.matched = 1
					continue
				}
			}
			p.pending = append(p.pending, b)
		}
		if err != nil && p.err == nil {
			p.pending = append(p.pending, p.keys[:p.matched]...)
			p.matched = 0
			p.err = err
		}
	}
}

// hijackedStreamer moves bytes between the terminal and a hijacked attach
// or exec connection: output demultiplexed (or raw for a tty), input
// copied and then half-closed so that the daemon sees EOF on stdin.
type hijackedStreamer struct {
	in         *InStream // nil: no stdin
	out        io.Writer
	errOut     io.Writer
	resp       client.HijackedResponse
	tty        bool
	detachKeys string
}

// stream runs until the output ends, the user detaches, or ctx ends.
func (h *hijackedStreamer) stream(ctx context.Context) error {
	restore, input, err := h.setupInput()
	if err != nil {
		return err
	}
	defer restore()

	outputDone := make(chan error, 1)
	go func() {
		var err error
		if h.out != nil || h.errOut != nil {
			if h.tty {
				_, err = io.Copy(h.out, h.resp.Reader)
				// Restore the terminal before anything else gets printed.
				restore()
			} else {
				out, errOut := h.out, h.errOut
				if out == nil {
					out = io.Discard
				}
				if errOut == nil {
					errOut = io.Discard
				}
				_, err = stdcopy.StdCopy(out, errOut, h.resp.Reader)
			}
		}
		outputDone <- err
	}()

	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if input != nil {
			_, err := io.Copy(h.resp.Conn, input)
			restore()
			if errors.Is(err, errEscape) {
				detached <- err
				return
			}
		}
		_ = h.resp.CloseWrite()
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if h.out != nil || h.errOut != nil {
			select {
			case err := <-outputDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hijackedStreamer) setupInput() (func(), io.Reader, error) {
	if h.in == nil {
		return func() {}, nil, nil
	}
	if !h.tty {
		return func() {}, h.in, nil
	}
	if err := h.in.SetRawTerminal(); err != nil {
		return nil, nil, fmt.Errorf("unable to set IO streams as raw terminal: %w", err)
	}
	var once sync.Once
	restore := func() { once.Do(h.in.RestoreTerminal) }
	keys := defaultDetachKeys
	if h.detachKeys != "" {
		if k, err := parseDetachKeys(h.detachKeys); err == nil {
			keys = k
		}
	}
	return restore, newEscapeProxy(h.in, keys), nil
}
