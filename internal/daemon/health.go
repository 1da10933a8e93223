package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"berth/internal/api"
	"berth/internal/keeper"
)

// Healthcheck defaults, as docker's.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxProbeOutput       = 4096
)

// HealthOnFailureAnnotation selects what berth does when a container turns
// unhealthy (beyond docker, which only reports it): none, restart, stop or
// kill. `berth run --health-on-failure` sets it.
const HealthOnFailureAnnotation = "berth.health-on-failure"

// healthConfig merges the image's HEALTHCHECK with the container's
// --health-* options; nil means no healthcheck.
func (d *Daemon) healthConfig(c *Container) *container.HealthConfig {
	var hc container.HealthConfig
	if img, err := d.images.Resolve(c.ImageID.String()); err == nil && img.DockerExt.Healthcheck != nil {
		hc = *img.DockerExt.Healthcheck
	}
	if o := c.Config.Healthcheck; o != nil {
		if len(o.Test) > 0 {
			hc.Test = o.Test
		}
		if o.Interval != 0 {
			hc.Interval = o.Interval
		}
		if o.Timeout != 0 {
			hc.Timeout = o.Timeout
		}
		if o.StartPeriod != 0 {
			hc.StartPeriod = o.StartPeriod
		}
		if o.StartInterval != 0 {
			hc.StartInterval = o.StartInterval
		}
		if o.Retries != 0 {
			hc.Retries = o.Retries
		}
	}
	if len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	if hc.Interval <= 0 {
		hc.Interval = defaultProbeInterval
	}
	if hc.Timeout <= 0 {
		hc.Timeout = defaultProbeTimeout
	}
	if hc.Retries <= 0 {
		hc.Retries = defaultProbeRetries
	}
	if hc.StartInterval <= 0 {
		hc.StartInterval = 5 * time.Second
	}
	return &hc
}

// startHealth begins probing a container that just started (or was found
// running after a daemon restart). The monitor ends when the container
// exits or ctx of the daemon ends.
func (d *Daemon) startHealth(c *Container, fresh bool) {
	hc := d.healthConfig(c)
	c.mu.Lock()
	if c.healthStop != nil {
		c.healthStop()
		c.healthStop = nil
	}
	if hc == nil {
		c.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	c.healthStop = cancel
	if fresh || c.State.Health == nil || c.State.Health.Status == "" {
		c.State.Health = &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	}
	started := c.State.StartedAt
	c.mu.Unlock()
	go d.monitorHealth(ctx, c, hc, started)
}

// stopHealth ends the monitor of a container that exited.
func (c *Container) stopHealth() {
	if c.healthStop != nil {
		c.healthStop()
		c.healthStop = nil
	}
}

func (d *Daemon) monitorHealth(ctx context.Context, c *Container, hc *container.HealthConfig, started time.Time) {
	for {
		wait := hc.Interval
		if hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod {
			wait = min(hc.StartInterval, hc.Interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		res := d.probe(ctx, c, hc)
		if ctx.Err() != nil {
			return
		}
		d.recordProbe(c, hc, res, started)
	}
}

// probe runs the healthcheck command inside the container.
func (d *Daemon) probe(ctx context.Context, c *Container, hc *container.HealthConfig) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now(), ExitCode: -1}
	var cmd []string
	switch hc.Test[0] {
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		cmd = hc.Test // docker treats a bare list as CMD
	}
	if len(cmd) == 0 {
		res.End, res.Output = time.Now(), "healthcheck has no command"
		return res
	}
	proc, err := d.execProcess(c, &container.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		res.End, res.Output = time.Now(), err.Error()
		return res
	}
	var b [16]byte
	rand.Read(b[:])
	e := &execConfig{ID: "health-" + hex.EncodeToString(b[:]), ContainerID: c.ID, done: make(chan struct{})}
	d.execs.Store(e.ID, e)
	defer d.execs.Delete(e.ID)
	ks, err := d.keeper.Exec(ctx, keeper.ExecRequest{ID: c.ID, ExecID: e.ID, Process: proc})
	if err != nil {
		res.End, res.Output = time.Now(), err.Error()
		return res
	}
	var out limitedBuffer
	copied := make(chan struct{})
	go func() {
		copyStream(api.Streams{Stdout: &out, Stderr: &out}, ks, false)
		close(copied)
	}()
	timer := time.NewTimer(hc.Timeout)
	defer timer.Stop()
	select {
	case <-e.done:
		<-copied
		e.mu.Lock()
		if e.exitCode != nil {
			res.ExitCode = *e.exitCode
		}
		e.mu.Unlock()
		res.Output = out.String()
	case <-timer.C:
		killPid(ks.Pid)
		res.ExitCode = -1
		// docker keeps what the probe printed before it was killed
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", hc.Timeout)
		if o := out.String(); o != "" {
			res.Output += ": " + o
		}
	case <-ctx.Done():
		killPid(ks.Pid)
	}
	ks.Close()
	res.End = time.Now()
	return res
}

// recordProbe updates the health state with docker's rules: failures
// during the start period do not count; Retries consecutive failures make
// the container unhealthy.
func (d *Daemon) recordProbe(c *Container, hc *container.HealthConfig, res *container.HealthcheckResult, started time.Time) {
	c.mu.Lock()
	h := c.State.Health
	if h == nil || !c.State.Running() {
		c.mu.Unlock()
		return
	}
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if !(hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod && h.Status == container.Starting) {
		h.FailingStreak++
		if h.FailingStreak >= hc.Retries {
			h.Status = container.Unhealthy
		}
	}
	changed := old != h.Status
	policy := c.HostConfig.Annotations[HealthOnFailureAnnotation]
	if policy == "" {
		policy = c.Config.Labels[HealthOnFailureAnnotation]
	}
	d.save(c)
	c.mu.Unlock()
	d.emit(c, events.Action(string(events.ActionHealthStatus)+": "+string(h.Status)), nil)
	if changed && h.Status == container.Unhealthy {
		go d.onUnhealthy(c, policy)
	}
}

// onUnhealthy applies --health-on-failure.
func (d *Daemon) onUnhealthy(c *Container, policy string) {
	ctx := d.ctx
	var err error
	switch policy {
	case "restart":
		err = d.ContainerRestart(ctx, c.ID, "", nil)
	case "stop":
		err = d.ContainerStop(ctx, c.ID, "", nil)
	case "kill":
		err = d.ContainerKill(ctx, c.ID, "KILL")
	default:
		return
	}
	if err != nil {
		d.log.Warn("health-on-failure action", "id", c.ID, "action", policy, "err", err)
	}
}

// limitedBuffer keeps the first maxProbeOutput bytes of a probe's output.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxProbeOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// validateHealth refuses healthcheck options docker refuses, with its words.
func validateHealth(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	const minimum = time.Millisecond
	switch {
	case h.Interval != 0 && h.Interval < minimum:
		return fmt.Errorf("Interval in Healthcheck cannot be less than %s", minimum)
	case h.Timeout != 0 && h.Timeout < minimum:
		return fmt.Errorf("Timeout in Healthcheck cannot be less than %s", minimum)
	case h.Retries < 0:
		return fmt.Errorf("Retries in Healthcheck cannot be negative")
	case h.StartPeriod != 0 && h.StartPeriod < minimum:
		return fmt.Errorf("StartPeriod in Healthcheck cannot be less than %s", minimum)
	case h.StartInterval != 0 && h.StartInterval < minimum:
		return fmt.Errorf("StartInterval in Healthcheck cannot be less than %s", minimum)
	}
	return nil
}

// killPid kills a probe; never pid <= 0, which would signal a process group.
func killPid(pid int) {
	if pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
	}
}
