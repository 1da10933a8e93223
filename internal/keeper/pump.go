package keeper

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pumpBufSize is the most one read of a container's output returns.
const pumpBufSize = 32 << 10

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, pumpBufSize); return &b }}

// outputReader reads a container's stdout/stderr pipe or pty master into
// a buffer borrowed from a pool only once data is there, and returned as
// soon as it is written out. An idle container then holds no read buffer:
// with one buffer per stream per container, those were the bulk of the
// keeper's memory per container (2 × 32 KiB).
type outputReader struct {
	f *os.File
}

// read waits for output and returns it in a pooled buffer that the caller
// hands back with release. At the end of the stream it returns io.EOF.
func (r outputReader) read() (*[]byte, int, error) {
	rc, err := r.f.SyscallConn()
	if err != nil {
		return nil, 0, err
	}
	var buf *[]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		b := pumpBufs.Get().(*[]byte)
		for {
			n, rerr = unix.Read(int(fd), *b)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			pumpBufs.Put(b)
			return false // wait until readable
		}
		buf = b
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if buf != nil {
			pumpBufs.Put(buf)
		}
		// a pty master reads EIO once the last slave fd is closed
		if errors.Is(err, unix.EIO) {
			err = io.EOF
		}
		return nil, 0, err
	}
	if n == 0 {
		pumpBufs.Put(buf)
		return nil, 0, io.EOF
	}
	return buf, n, nil
}

func release(buf *[]byte) { pumpBufs.Put(buf) }
