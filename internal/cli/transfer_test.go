package cli

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// TestTransferSummary: the summary counts every layer the stream named,
// the bytes of those that moved (their largest announced total), and
// takes the digest from the pull's "Digest:" line or the push's aux,
// while passing the stream through unchanged, however it is split.
func TestTransferSummary(t *testing.T) {
	pull := `{"status":"Pulling from ns/app","id":"v1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Already exists","progressDetail":{},"id":"bbbb"}
{"status":"Downloading","progressDetail":{"current":100,"total":3000},"id":"aaaa"}
{"status":"Downloading","progressDetail":{"current":3000,"total":3000},"id":"aaaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaaa"}
{"status":"Digest: sha256:1111"}
{"status":"Status: Downloaded newer image for h:5000/ns/app:v1"}
`
	s := newTransferSummary(iotest.OneByteReader(strings.NewReader(pull)))
	got, err := io.ReadAll(s)
	if err != nil || string(got) != pull {
		t.Fatalf("the stream changed on its way: %v\n%s", err, got)
	}
	line := s.line("pulled", "h:5000/ns/app:v1")
	if !regexp.MustCompile(`^pulled h:5000/ns/app:v1: sha256:1111, 2 layers \(1 downloaded, 3kB\) in [0-9.]+m?s$`).MatchString(line) {
		t.Errorf("pull summary: %q", line)
	}

	push := `{"status":"The push refers to repository [h:5000/ns/app]"}
{"status":"Preparing","progressDetail":{},"id":"cccc"}
{"status":"Preparing","progressDetail":{},"id":"dddd"}
{"status":"Pushing","progressDetail":{"current":512,"total":2048},"id":"cccc"}
{"status":"Pushing","progressDetail":{"current":2048,"total":2048},"id":"cccc"}
{"status":"Pushed","progressDetail":{},"id":"cccc"}
{"status":"Mounted from ns/other","progressDetail":{},"id":"dddd"}
{"status":"v1: digest: sha256:2222 size: 527"}
{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:2222","Size":527}}`
	s = newTransferSummary(iotest.HalfReader(strings.NewReader(push)))
	io.Copy(io.Discard, s)
	line = s.line("pushed", "h:5000/ns/app:v1")
	if !strings.HasPrefix(line, "pushed h:5000/ns/app:v1: sha256:2222, 2 layers (1 uploaded, 2.05kB) in ") {
		t.Errorf("push summary: %q", line)
	}
}
