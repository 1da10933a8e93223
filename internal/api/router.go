package api

import (
	"context"
	"net/http"
	"strings"
)

// handlerFunc is an Engine API handler. A returned error is mapped to a
// status code and a {"message":...} body by writeError, unless the handler
// has already started the response (streams), in which case it is logged.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p params) error

// params holds the path parameters of a matched route.
type params map[string]string

// route is one METHOD + path pattern; method "*" matches any method. A pattern is a list of segments where
// "{x}" matches exactly one segment and "{x...}" matches one or more
// segments. At most one "{x...}" per pattern: image references contain
// slashes and colons as typed (/images/127.0.0.1:5002/a/b:t/push), so the
// fixed segments after the wildcard are matched from the end of the path.
type route struct {
	method  string
	pattern string
	segs    []string
	handler handlerFunc
}

// router matches routes in the order they were added; add exact paths
// (/images/json) before wildcard ones so they win.
type router struct {
	routes []route
}

func (rt *router) handle(method, pattern string, h handlerFunc) {
	rt.routes = append(rt.routes, route{
		method:  method,
		pattern: pattern,
		segs:    splitPath(pattern),
		handler: h,
	})
}

// match finds the route for method and path. pathFound reports whether some
// route matched the path with another method (for 405 vs 404).
func (rt *router) match(method, path string) (h handlerFunc, p params, pathFound bool) {
	segs := splitPath(path)
	for _, r := range rt.routes {
		m, ok := matchSegs(r.segs, segs)
		if !ok {
			continue
		}
		if r.method != method && r.method != "*" {
			pathFound = true
			continue
		}
		return r.handler, m, true
	}
	return nil, nil, pathFound
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func matchSegs(pat, segs []string) (params, bool) {
	wild := -1
	for i, s := range pat {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}") {
			wild = i
			break
		}
	}
	var p params
	set := func(k, v string) {
		if p == nil {
			p = params{}
		}
		p[k] = v
	}
	one := func(ps, s string) bool {
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") {
			if s == "" {
				return false
			}
			set(ps[1:len(ps)-1], s)
			return true
		}
		return ps == s
	}
	if wild < 0 {
		if len(pat) != len(segs) {
			return nil, false
		}
		for i := range pat {
			if !one(pat[i], segs[i]) {
				return nil, false
			}
		}
		return p, true
	}
	after := len(pat) - wild - 1
	if len(segs) < len(pat) {
		return nil, false
	}
	for i := 0; i < wild; i++ {
		if !one(pat[i], segs[i]) {
			return nil, false
		}
	}
	for i := 0; i < after; i++ {
		if !one(pat[len(pat)-1-i], segs[len(segs)-1-i]) {
			return nil, false
		}
	}
	name := pat[wild]
	set(name[1:len(name)-len("...}")], strings.Join(segs[wild:len(segs)-after], "/"))
	return p, true
}

type versionKey struct{}

// apiVersion returns the API version the request was made with (the
// advertised version for unversioned paths).
func apiVersion(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// VersionBefore reports whether ctx is an API request made with a version
// older than v; false for calls that did not come through the API. The
// backend uses it for defaults that dockerd records at create by version.
func VersionBefore(ctx context.Context, v string) bool {
	have := apiVersion(ctx)
	return have != "" && compareVersions(have, v) < 0
}
