package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
	containers             []string
}

func newStatsCommand(c *Cli) *cobra.Command {
	var opts statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			return runStats(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all containers (default shows just running)")
	flags.BoolVar(&opts.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Do not truncate output")
	flags.StringVar(&opts.format, "format", "", "Format output using a custom template")
	return cmd
}

// statsEntry is one row of `stats`, computed from a daemon sample.
type statsEntry struct {
	container        string
	name, id         string
	cpuPercentage    float64
	memory, memLimit float64
	memPercentage    float64
	netRx, netTx     float64
	blockRead        float64
	blockWrite       float64
	pids             uint64
	trunc            bool
}

// newStatsEntry derives the row values the way docker does.
func newStatsEntry(ref string, s *container.StatsResponse, trunc bool) statsEntry {
	e := statsEntry{container: ref, name: strings.TrimPrefix(s.Name, "/"), id: s.ID, trunc: trunc}
	// CPU: share of the whole system's time since the previous sample.
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		e.cpuPercentage = cpuDelta / sysDelta * online * 100
	}
	// Memory without the page cache that can be reclaimed.
	mem := s.MemoryStats
	used := float64(mem.Usage)
	if v, ok := mem.Stats["total_inactive_file"]; ok && v < mem.Usage {
		used = float64(mem.Usage - v)
	} else if v, ok := mem.Stats["inactive_file"]; ok && v < mem.Usage {
		used = float64(mem.Usage - v)
	}
	e.memory, e.memLimit = used, float64(mem.Limit)
	if mem.Limit != 0 {
		e.memPercentage = used / float64(mem.Limit) * 100
	}
	for _, n := range s.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			e.blockRead += float64(b.Value)
		case "write":
			e.blockWrite += float64(b.Value)
		}
	}
	e.pids = s.PidsStats.Current
	return e
}

func (e statsEntry) MarshalJSON() ([]byte, error) { return marshalContext(e) }

func (e statsEntry) Container() string { return e.container }

func (e statsEntry) Name() string {
	if e.name == "" {
		return "--"
	}
	return e.name
}

func (e statsEntry) ID() string {
	if e.trunc {
		return truncateID(e.id)
	}
	return e.id
}

func (e statsEntry) CPUPerc() string { return fmt.Sprintf("%.2f%%", e.cpuPercentage) }
func (e statsEntry) MemPerc() string { return fmt.Sprintf("%.2f%%", e.memPercentage) }
func (e statsEntry) MemUsage() string {
	return units.BytesSize(e.memory) + " / " + units.BytesSize(e.memLimit)
}
func (e statsEntry) NetIO() string {
	return units.HumanSizeWithPrecision(e.netRx, 3) + " / " + units.HumanSizeWithPrecision(e.netTx, 3)
}
func (e statsEntry) BlockIO() string {
	return units.HumanSizeWithPrecision(e.blockRead, 3) + " / " + units.HumanSizeWithPrecision(e.blockWrite, 3)
}
func (e statsEntry) PIDs() string { return strconv.FormatUint(e.pids, 10) }

var statsHeader = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
	"BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

func runStats(ctx context.Context, c *Cli, opts *statsOptions) error {
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	format := opts.format
	switch format {
	case "", tableFormatKey:
		format = defaultStatsFormat
	case "json":
		format = "{{json .}}"
	}
	names := opts.containers
	if len(names) == 0 {
		res, err := apiClient.ContainerList(ctx, client.ContainerListOptions{All: opts.all})
		if err != nil {
			return err
		}
		for _, ct := range res.Items {
			names = append(names, truncateID(ct.ID))
		}
	}

	// One goroutine per container keeps the latest sample.
	var mu sync.Mutex
	latest := make([]*statsEntry, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := apiClient.ContainerStats(ctx, name, client.ContainerStatsOptions{Stream: !opts.noStream})
			if err != nil {
				mu.Lock()
				errs[i] = err
				mu.Unlock()
				return
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for {
				var s container.StatsResponse
				if err := dec.Decode(&s); err != nil {
					return
				}
				e := newStatsEntry(name, &s, !opts.noTrunc)
				mu.Lock()
				latest[i] = &e
				mu.Unlock()
				if opts.noStream {
					return
				}
			}
		}()
	}

	render := func() error {
		mu.Lock()
		defer mu.Unlock()
		var rows []statsEntry
		for _, e := range latest {
			if e != nil {
				rows = append(rows, *e)
			}
		}
		var buf bytes.Buffer
		if err := writeList(&buf, format, statsHeader, rows); err != nil {
			return err
		}
		if !opts.noStream && c.Out().IsTerminal() {
			fmt.Fprint(c.Out(), "\x1b[2J\x1b[H")
		}
		_, err := buf.WriteTo(c.Out())
		return err
	}

	if opts.noStream {
		wg.Wait()
		var msgs []string
		for _, err := range errs {
			if err != nil {
				msgs = append(msgs, errText(err))
			}
		}
		if len(msgs) > 0 {
			return errors.New(strings.Join(msgs, "\n"))
		}
		return render()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			_ = render()
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		case <-tick.C:
			if err := render(); err != nil {
				return err
			}
		}
	}
}
