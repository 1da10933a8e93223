package daemon

import (
	"bytes"
	"io"
)

func indexNL(b []byte) int           { return bytes.IndexByte(b, '\n') }
func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
