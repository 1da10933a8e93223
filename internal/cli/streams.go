package cli

import (
	"errors"
	"io"
	"os"

	"golang.org/x/term"
)

// InStream is the standard input, with what the CLI needs to know about
// its terminal: whether it is one, and how to put it in raw mode.
type InStream struct {
	io.Reader
	fd       int
	terminal bool
	state    *term.State
}

// NewInStream wraps r; if r is an *os.File on a terminal, the stream can be
// switched to raw mode.
func NewInStream(r io.Reader) *InStream {
	s := &InStream{Reader: r, fd: -1}
	if f, ok := r.(*os.File); ok {
		s.fd = int(f.Fd())
		s.terminal = term.IsTerminal(s.fd)
	}
	return s
}

// Close closes the underlying reader when it can be closed.
func (s *InStream) Close() error {
	if c, ok := s.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// IsTerminal reports whether stdin is a terminal.
func (s *InStream) IsTerminal() bool { return s.terminal }

// SetRawTerminal puts the terminal in raw mode (no echo, no line
// discipline, no signals from ^C): the container's tty does all that.
func (s *InStream) SetRawTerminal() error {
	if !s.terminal {
		return nil
	}
	st, err := term.MakeRaw(s.fd)
	if err != nil {
		return err
	}
	s.state = st
	return nil
}

// RestoreTerminal undoes SetRawTerminal.
func (s *InStream) RestoreTerminal() {
	if s.state != nil {
		_ = term.Restore(s.fd, s.state)
		s.state = nil
	}
}

// CheckTty refuses -t when stdin is not a terminal but is attached, with
// docker's message.
func (s *InStream) CheckTty(attachStdin, ttyMode bool) error {
	if ttyMode && attachStdin && !s.terminal {
		return errors.New("the input device is not a TTY")
	}
	return nil
}

// OutStream is stdout or stderr, with its terminal size when it is one.
type OutStream struct {
	io.Writer
	fd       int
	terminal bool
}

// NewOutStream wraps w.
func NewOutStream(w io.Writer) *OutStream {
	s := &OutStream{Writer: w, fd: -1}
	if f, ok := w.(*os.File); ok {
		s.fd = int(f.Fd())
		s.terminal = term.IsTerminal(s.fd)
	}
	return s
}

// IsTerminal reports whether the stream is a terminal.
func (s *OutStream) IsTerminal() bool { return s.terminal }

// FD is the file descriptor, or -1.
func (s *OutStream) FD() int { return s.fd }

// GetTtySize returns (height, width), or zeros when not a terminal.
func (s *OutStream) GetTtySize() (uint, uint) {
	if !s.terminal {
		return 0, 0
	}
	w, h, err := term.GetSize(s.fd)
	if err != nil || w <= 0 || h <= 0 {
		return 0, 0
	}
	return uint(h), uint(w)
}
