// Package jsonlog reads and writes container logs in docker's json-file
// format: one JSON object per line, {"log":"...","stream":"stdout","time":"..."}.
//
// The keeper writes (it owns the containers' stdio); the daemon reads for
// `logs`. Files rotate by size: <path>, <path>.1 … <path>.<max-1>, oldest last.
package jsonlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Entry is one log record.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Defaults: docker's json-file grows without bound; berth rotates by default.
const (
	DefaultMaxSize  = 20 << 20
	DefaultMaxFiles = 5
	maxLine         = 16 << 10 // docker splits lines longer than 16 KiB
)

// Writer appends entries to a rotating log file. It is safe for concurrent use.
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	buf      []byte
}

// NewWriter opens (appending) the log at path. maxSize <= 0 disables rotation.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles}, nil
}

// Write records msg (which may hold several lines) as coming from stream.
func (w *Writer) Write(stream string, msg []byte, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = w.buf[:0]
	for len(msg) > 0 {
		n := bytes.IndexByte(msg, '\n') + 1
		if n == 0 || n > maxLine {
			n = min(len(msg), maxLine)
		}
		w.buf = appendEntry(w.buf, msg[:n], stream, now)
		msg = msg[n:]
	}
	if w.maxSize > 0 && w.size+int64(len(w.buf)) > w.maxSize && w.size > 0 {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	return err
}

func appendEntry(b, line []byte, stream string, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

func appendJSONString(b, s []byte) []byte {
	// json.Marshal of a string escapes <, >, & as docker does too; both decode the same.
	enc, _ := json.Marshal(string(s))
	return append(b, enc...)
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	for i := w.maxFiles - 1; i >= 1; i-- {
		from := w.path
		if i > 1 {
			from = w.path + "." + strconv.Itoa(i-1)
		}
		to := w.path + "." + strconv.Itoa(i)
		if err := os.Rename(from, to); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if w.maxFiles == 1 {
		if err := os.Truncate(w.path, 0); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// Close closes the current file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// Files returns the existing log files of path, oldest first.
func Files(path string, maxFiles int) []string {
	var out []string
	for i := maxFiles - 1; i >= 1; i-- {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, path)
}

// Decoder reads entries from a log file.
type Decoder struct {
	r *bufio.Reader
}

// NewDecoder reads entries from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// Decode returns the next complete entry. A partial last line (a write in
// progress) yields io.EOF without consuming it only when r is an *os.File;
// callers following a file re-read from their own offset.
func (d *Decoder) Decode() (Entry, []byte, error) {
	line, err := d.r.ReadBytes('\n')
	if err != nil {
		return Entry{}, line, err
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Entry{}, nil, fmt.Errorf("corrupt log line: %w", err)
	}
	return e, nil, nil
}
