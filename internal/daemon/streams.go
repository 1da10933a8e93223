package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/api/types/events"

	"berth/internal/api"
	"berth/internal/errdefs"
	"berth/internal/jsonlog"
	"berth/internal/keeper"
)

// ContainerAttach connects the client's streams to the container. For a
// container that has not started yet the attach is registered, and start
// hands it its stream before the process runs (docker run's order:
// attach, wait, start).
func (d *Daemon) ContainerAttach(ctx context.Context, name string, opts api.AttachOptions) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	// A container not yet running gets a pending attachment, registered
	// before GetStreams answers the client: `start -a` and `run` send
	// start the moment they have that answer, and start hands its output
	// only to the attachments registered by then.
	var p *pendingAttach
	if opts.Stream && !(c.State.Running() && !c.starting) {
		p = &pendingAttach{stdin: opts.Stdin, stdout: opts.Stdout, stderr: opts.Stderr, ready: make(chan *keeper.Stream, 1)}
		c.pending = append(c.pending, p)
	}
	c.mu.Unlock()
	streams, err := opts.GetStreams(tty)
	if err != nil {
		if p != nil {
			d.dropPending(c, p)
		}
		return err
	}
	if !opts.Stream {
		return nil
	}
	stdin := opts.Stdin && streams.Stdin != nil
	var ks *keeper.Stream
	if p == nil {
		ks, err = d.keeper.Attach(ctx, c.ID, stdin, opts.Stdout, opts.Stderr)
		if err != nil {
			return err
		}
	} else {
		d.emit(c, events.ActionAttach, nil)
		select {
		case ks = <-p.ready:
		case <-ctx.Done():
			d.dropPending(c, p)
			return nil
		}
		if ks == nil {
			return nil
		}
	}
	defer ks.Close()
	if stdin {
		go func() {
			io.Copy(ks, streams.Stdin)
			ks.CloseWrite()
		}()
	}
	return copyStream(streams, ks, tty)
}

// dropPending withdraws an attachment nobody will read; if start has
// already taken it, the stream it hands over is closed.
func (d *Daemon) dropPending(c *Container, p *pendingAttach) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.pending {
		if q == p {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
	go func() {
		if ks := <-p.ready; ks != nil {
			ks.Close()
		}
	}()
}

// copyStream copies a keeper stream to the client: raw for a tty, else
// demultiplexed from the 8-byte frames onto stdout and stderr.
func copyStream(s api.Streams, r io.Reader, tty bool) error {
	if tty {
		if s.Stdout == nil {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		_, err := io.Copy(s.Stdout, r)
		if isClosedConn(err) {
			return nil
		}
		return err
	}
	br := bufio.NewReaderSize(r, 32<<10)
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF || isClosedConn(err) {
				return nil
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		w := s.Stdout
		if hdr[0] == 2 {
			w = s.Stderr
		}
		for n > 0 {
			m, err := br.Read(buf[:min(n, len(buf))])
			if m > 0 && w != nil {
				if _, werr := w.Write(buf[:m]); werr != nil {
					return nil // the client went away
				}
			}
			n -= m
			if err != nil {
				return nil
			}
		}
	}
}

func isClosedConn(err error) bool {
	return err != nil && (errors.Is(err, io.ErrClosedPipe) || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF))
}

// ContainerLogs writes the container's json-file log to the client.
func (d *Daemon) ContainerLogs(ctx context.Context, name string, opts api.LogsOptions) error {
	c, err := d.Get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	driver := c.HostConfig.LogConfig.Type
	_, maxFiles := logLimits(c.HostConfig.LogConfig.Config)
	c.mu.Unlock()
	// "local" is stored in the json-file format too: both can be read.
	if driver != "" && driver != "json-file" && driver != "local" {
		return errdefs.InvalidParameter(fmt.Errorf("configured logging driver does not support reading"))
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidParameter(errors.New("Bad parameters: you must choose at least one stream"))
	}
	streams, err := opts.GetStreams(tty)
	if err != nil {
		return err
	}
	emit := func(e jsonlog.Entry) error {
		if (!opts.Since.IsZero() && e.Time.Before(opts.Since)) || (!opts.Until.IsZero() && e.Time.After(opts.Until)) {
			return nil
		}
		w := streams.Stdout
		if e.Stream == "stderr" {
			if !opts.Stderr {
				return nil
			}
			w = streams.Stderr
		} else if !opts.Stdout {
			return nil
		}
		msg := []byte(e.Log)
		if opts.Timestamps {
			msg = append([]byte(e.Time.UTC().Format(time.RFC3339Nano)+" "), msg...)
		}
		_, err := w.Write(msg)
		return err
	}
	files := jsonlog.Files(c.LogPath, maxFiles)
	var tail []jsonlog.Entry
	var offset int64
	for i, path := range files {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		dec := jsonlog.NewDecoder(f)
		var read int64
		for {
			e, partial, err := dec.Decode()
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = partial
					break
				}
				continue // skip a corrupt line
			}
			read += 0
			if opts.Tail < 0 {
				if werr := emit(e); werr != nil {
					f.Close()
					return nil
				}
			} else if opts.Tail > 0 {
				tail = append(tail, e)
				if len(tail) > opts.Tail {
					tail = tail[1:]
				}
			}
		}
		if i == len(files)-1 {
			offset = logOffset(f)
		}
		f.Close()
	}
	for _, e := range tail {
		if emit(e) != nil {
			return nil
		}
	}
	if !opts.Follow {
		return nil
	}
	return d.followLog(ctx, c, c.LogPath, offset, emit)
}

// logOffset is the end of the complete lines read so far.
func logOffset(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	size := st.Size()
	// back off to the last newline so a line being written is read whole later
	buf := make([]byte, 1)
	for size > 0 {
		if _, err := f.ReadAt(buf, size-1); err != nil || buf[0] == '\n' {
			break
		}
		size--
	}
	return size
}

// followLog streams new log lines until the container stops or ctx ends.
func (d *Daemon) followLog(ctx context.Context, c *Container, path string, offset int64, emit func(jsonlog.Entry) error) error {
	var pending []byte
	buf := make([]byte, 64<<10)
	f, _ := os.Open(path)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		c.mu.Lock()
		running := c.State.Running() || c.starting
		removed := c.removed
		ch := c.waitChan()
		c.mu.Unlock()
		if f == nil {
			f, _ = os.Open(path)
		}
		if f != nil {
			if st, err := f.Stat(); err == nil && st.Size() < offset {
				offset = 0 // truncated or rotated under us
			}
			if cur, err := os.Stat(path); err == nil {
				if st, err := f.Stat(); err == nil && !os.SameFile(st, cur) {
					f.Close()
					f, _ = os.Open(path)
					offset = 0
				}
			}
			for f != nil {
				n, err := f.ReadAt(buf, offset)
				offset += int64(n)
				pending = append(pending, buf[:n]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					line := pending[:i+1]
					dec := jsonlog.NewDecoder(bytes.NewReader(line))
					if e, _, derr := dec.Decode(); derr == nil {
						if emit(e) != nil {
							return nil
						}
					}
					pending = pending[i+1:]
				}
				if err != nil || n == 0 {
					break
				}
			}
		}
		if !running || removed {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
