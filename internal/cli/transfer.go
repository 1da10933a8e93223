package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
)

// transferSummary watches a pull or push progress stream as it passes to
// the display and adds up what berth prints after it, on stderr so that
// stdout stays docker's: the digest, the layers, the bytes that moved and
// the time it took.
type transferSummary struct {
	r     io.Reader
	buf   []byte
	start time.Time

	digest string
	totals map[string]int64 // by layer id: the largest total announced
	moved  map[string]bool  // layers that were downloaded or uploaded
	layers map[string]bool  // every layer the stream named
}

func newTransferSummary(r io.Reader) *transferSummary {
	return &transferSummary{r: r, start: time.Now(), totals: map[string]int64{}, moved: map[string]bool{}, layers: map[string]bool{}}
}

// Read passes the stream through, reading each complete line's message.
func (s *transferSummary) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.buf = append(s.buf, p[:n]...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.observe(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	if err != nil && len(s.buf) > 0 {
		s.observe(s.buf)
		s.buf = nil
	}
	return n, err
}

func (s *transferSummary) observe(line []byte) {
	var m jsonMessage
	if json.Unmarshal(bytes.TrimSpace(line), &m) != nil {
		return
	}
	if m.Aux != nil {
		var aux struct{ Digest string }
		if json.Unmarshal(m.Aux, &aux) == nil && aux.Digest != "" {
			s.digest = aux.Digest
		}
	}
	if d, ok := strings.CutPrefix(m.Status, "Digest: "); ok {
		s.digest = d
	}
	if m.ID == "" || strings.Contains(m.Status, " ") && !layerStatus(m.Status) {
		return
	}
	switch m.Status {
	case "Downloading", "Pushing":
		s.moved[m.ID] = true
		if m.ProgressDetail != nil && m.ProgressDetail.Total > s.totals[m.ID] {
			s.totals[m.ID] = m.ProgressDetail.Total
		}
	}
	if layerStatus(m.Status) {
		s.layers[m.ID] = true
	}
}

// layerStatus tells the per-layer statuses of pulls and pushes from the
// per-tag ones ("v1: Pulling from ns/repo").
func layerStatus(status string) bool {
	switch status {
	case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete", "Extracting",
		"Pull complete", "Already exists", "Preparing", "Pushing", "Pushed", "Layer already exists":
		return true
	}
	return strings.HasPrefix(status, "Mounted from ")
}

// line is the summary: "pulled ref: sha256:… 3 layers (1 downloaded,
// 2.1MB) in 1.2s".
func (s *transferSummary) line(verb, ref string) string {
	var size int64
	for id := range s.moved {
		size += s.totals[id]
	}
	moved := "downloaded"
	if verb == "pushed" {
		moved = "uploaded"
	}
	d := s.digest
	if d == "" {
		d = "no digest"
	}
	return fmt.Sprintf("%s %s: %s, %d layers (%d %s, %s) in %s", verb, ref, d, len(s.layers), len(s.moved), moved,
		units.HumanSizeWithPrecision(float64(size), 3), time.Since(s.start).Round(time.Millisecond))
}

// startPull asks the daemon to pull ref (for platform, when set) with the
// stored credentials and returns the progress stream; the caller closes it.
func startPull(ctx context.Context, apiClient client.APIClient, ref, platform string) (io.ReadCloser, error) {
	opts := client.ImagePullOptions{RegistryAuth: registryAuthFor(ref)}
	if p, err := parsePlatform(platform); err != nil {
		return nil, err
	} else if p != nil {
		opts.Platforms = append(opts.Platforms, *p)
	}
	return apiClient.ImagePull(ctx, ref, opts)
}

// pullWithSummary is `berth pull`'s transfer: docker's progress display on
// out, then the summary on stderr (unless quiet).
func pullWithSummary(ctx context.Context, c *Cli, apiClient client.APIClient, ref, platform string, quiet bool) error {
	resp, err := startPull(ctx, apiClient, ref, platform)
	if err != nil {
		return err
	}
	defer resp.Close()
	var out io.Writer = c.Out()
	if quiet {
		out = io.Discard
	}
	sum := newTransferSummary(resp)
	if err := displayJSONMessages(sum, NewOutStream(out), nil); err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintln(c.Err(), sum.line("pulled", ref))
	}
	return nil
}
