package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"berth/internal/api"
)

// eventLog keeps the recent events (for --since) and fans new ones out.
type eventLog struct {
	mu   sync.Mutex
	past []events.Message
	subs map[chan events.Message]struct{}
}

const eventHistory = 1024

func newEventLog() *eventLog { return &eventLog{subs: map[chan events.Message]struct{}{}} }

func (l *eventLog) publish(m events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.past) >= eventHistory {
		l.past = append(l.past[:0], l.past[len(l.past)-eventHistory/2:]...)
	}
	l.past = append(l.past, m)
	for ch := range l.subs {
		select {
		case ch <- m:
		default: // a subscriber that does not read loses events rather than blocking the engine
		}
	}
}

// emit publishes a container event with docker's attributes.
func (d *Daemon) emit(c *Container, action events.Action, extra map[string]string) {
	c.mu.Lock()
	attrs := map[string]string{"image": c.Image, "name": strings.TrimPrefix(c.Name, "/")}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	c.mu.Unlock()
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	d.events.publish(events.Message{
		Type: events.ContainerEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: c.ID, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emitImage publishes an image event.
func (d *Daemon) emitImage(id, name string, action events.Action) {
	now := time.Now()
	d.events.publish(events.Message{
		Type: events.ImageEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// Events returns the past events matching filters in [since, until] and a
// channel of new ones that closes when ctx ends.
func (d *Daemon) Events(ctx context.Context, since, until time.Time, f api.Filters) ([]events.Message, <-chan events.Message, error) {
	l := d.events
	ch := make(chan events.Message, 256)
	l.mu.Lock()
	var past []events.Message
	for _, m := range l.past {
		t := time.Unix(0, m.TimeNano)
		if (!since.IsZero() && t.Before(since)) || (!until.IsZero() && t.After(until)) {
			continue
		}
		if matchEvent(m, f) {
			past = append(past, m)
		}
	}
	live := until.IsZero() || until.After(time.Now())
	if live {
		l.subs[ch] = struct{}{}
	}
	l.mu.Unlock()
	out := make(chan events.Message, 256)
	if !live {
		close(out)
		return past, out, nil
	}
	go func() {
		defer close(out)
		defer func() { l.mu.Lock(); delete(l.subs, ch); l.mu.Unlock() }()
		var deadline <-chan time.Time
		if !until.IsZero() {
			t := time.NewTimer(time.Until(until))
			defer t.Stop()
			deadline = t.C
		}
		for {
			select {
			case m := <-ch:
				if matchEvent(m, f) {
					select {
					case out <- m:
					case <-ctx.Done():
						return
					}
				}
			case <-deadline:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return past, out, nil
}

func matchEvent(m events.Message, f api.Filters) bool {
	in := func(key string, vals ...string) bool {
		set, ok := f[key]
		if !ok || len(set) == 0 {
			return true
		}
		for _, v := range vals {
			if set[v] {
				return true
			}
		}
		return false
	}
	name := m.Actor.Attributes["name"]
	if !in("type", string(m.Type)) || !in("event", string(m.Action)) {
		return false
	}
	if m.Type == events.ContainerEventType && !in("container", m.Actor.ID, name, shortID(m.Actor.ID)) {
		return false
	}
	if _, ok := f["container"]; ok && m.Type != events.ContainerEventType {
		return false
	}
	// volume=NAME keeps only that volume's events, as dockerd's filter does
	if _, ok := f["volume"]; ok && (m.Type != events.VolumeEventType || !in("volume", m.Actor.ID)) {
		return false
	}
	if !in("image", m.Actor.Attributes["image"], name) {
		return false
	}
	if set, ok := f["label"]; ok {
		for l := range set {
			k, v, hasV := strings.Cut(l, "=")
			got, present := m.Actor.Attributes[k]
			if !present || (hasV && got != v) {
				return false
			}
		}
	}
	return true
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
