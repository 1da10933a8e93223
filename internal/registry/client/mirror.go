package client

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/distribution/reference"
)

// Mirrors: a pull may be served by mirrors of a registry, tried in order
// before the registry itself (the origin). A mirror that fails in any
// way, a 404 included, passes the request on to the next one and finally
// to the origin, so a mirror can only speed a pull up. Pushes, tag lists
// and logins always go to the origin. Mirrors are configured per registry
// domain ("docker.io", "127.0.0.1:5000"); docker's registry-mirrors are
// the ones of docker.io.

// mirror is a parsed mirror URL.
type mirror struct {
	host   string // host[:port]
	scheme string // "http" or "https"
}

// parseMirrors reads Options.Mirrors: URLs ("https://mirror.example",
// "http://127.0.0.1:5001") or bare hosts, spoken to over HTTPS unless
// they are loopback or insecure, like any registry.
func parseMirrors(m map[string][]string) (map[string][]mirror, error) {
	out := map[string][]mirror{}
	for domain, urls := range m {
		if domain == "index.docker.io" || domain == hubEndpoint {
			domain = hubDomain
		}
		for _, s := range urls {
			mr, err := parseMirror(s)
			if err != nil {
				return nil, err
			}
			out[domain] = append(out[domain], mr)
		}
	}
	return out, nil
}

func parseMirror(s string) (mirror, error) {
	if !strings.Contains(s, "://") {
		if s == "" || strings.ContainsAny(s, "/?#") {
			return mirror{}, fmt.Errorf("invalid mirror %q: want a URL like https://host[:port]", s)
		}
		return mirror{host: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return mirror{}, fmt.Errorf("invalid mirror %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return mirror{}, fmt.Errorf("invalid mirror %q: want an http or https URL with a host", s)
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "v2" || u.RawQuery != "" || u.User != nil {
		return mirror{}, fmt.Errorf("invalid mirror %q: a mirror is a host, without path, query or user", s)
	}
	return mirror{host: u.Host, scheme: u.Scheme}, nil
}

// pullHosts are the endpoints a pull of named tries, in order: its
// registry's mirrors, then the registry itself.
func (c *Client) pullHosts(named reference.Named) []string {
	origin := endpointHost(named)
	var hosts []string
	for _, m := range c.mirrors[reference.Domain(named)] {
		if m.host != origin {
			hosts = append(hosts, m.host)
		}
	}
	return append(hosts, origin)
}

// tryHosts runs f against each pull endpoint of named until one succeeds;
// a mirror's failure is logged and passed over, the origin's returned.
func tryHosts[T any](ctx context.Context, c *Client, named reference.Named, what string, f func(host string) (T, error)) (T, error) {
	hosts := c.pullHosts(named)
	for i, h := range hosts {
		v, err := f(h)
		if err == nil || i == len(hosts)-1 || ctx.Err() != nil {
			return v, err
		}
		slog.Info("registry mirror failed; trying the next endpoint", "mirror", h, "what", what,
			"ref", reference.FamiliarString(named), "next", hosts[i+1], "err", err)
	}
	panic("unreachable: pullHosts is never empty")
}
