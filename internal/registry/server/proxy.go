package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ProxyConfig makes the registry a pull-through cache of RemoteURL: a
// manifest or blob it lacks is fetched from there, stored, then served.
// Such a registry takes no pushes.
type ProxyConfig struct {
	// RemoteURL is the upstream registry, such as https://registry-1.docker.io.
	RemoteURL string `json:"remoteurl"`
	// Username and Password authenticate to the upstream (basic, or for
	// its token service).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Client sends the upstream requests; http.DefaultClient when nil.
	Client *http.Client `json:"-"`
}

// WithProxy turns on pull-through caching.
func WithProxy(c ProxyConfig) Option {
	return func(s *Server) error {
		u, err := url.Parse(c.RemoteURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("registry: proxy remote URL %q is not an http(s) URL", c.RemoteURL)
		}
		if c.Client == nil {
			c.Client = http.DefaultClient
		}
		s.proxy = &proxy{cfg: c, base: strings.TrimSuffix(c.RemoteURL, "/"), tokens: map[string]string{}}
		return nil
	}
}

type proxy struct {
	cfg  ProxyConfig
	base string
	// tokens caches the upstream's bearer token per repository.
	mu     sync.Mutex
	tokens map[string]string
}

// manifestAccept lists every manifest type the registry stores.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	mediaTypeDockerManifest, mediaTypeDockerManifestList,
}, ", ")

// isCode tells whether err is the spec error code.
func isCode(err error, code string) bool {
	var re *regError
	return errors.As(err, &re) && re.Code == code
}

// get sends a GET to the upstream, answering one bearer challenge.
func (p *proxy) get(ctx context.Context, name, path, accept string) (*http.Response, error) {
	return p.do(ctx, http.MethodGet, name, path, accept)
}

// do sends a request to the upstream, answering one bearer challenge.
func (p *proxy) do(ctx context.Context, method, name, path, accept string) (*http.Response, error) {
	do := func(token string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, p.base+path, nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		switch {
		case token != "":
			req.Header.Set("Authorization", "Bearer "+token)
		case p.cfg.Username != "":
			req.SetBasicAuth(p.cfg.Username, p.cfg.Password)
		}
		return p.cfg.Client.Do(req)
	}
	p.mu.Lock()
	tok := p.tokens[name]
	p.mu.Unlock()
	resp, err := do(tok)
	if err != nil {
		return nil, errUpstream(p.base+path, err)
	}
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer ") {
		return resp, nil
	}
	resp.Body.Close()
	tok, err = p.token(ctx, ch, name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.tokens[name] = tok
	p.mu.Unlock()
	resp, err = do(tok)
	if err != nil {
		return nil, errUpstream(p.base+path, err)
	}
	return resp, nil
}

// token fetches a pull token as a Bearer challenge directs.
func (p *proxy) token(ctx context.Context, challenge, name string) (string, error) {
	params := parseChallenge(challenge)
	realm := params["realm"]
	if realm == "" {
		return "", fmt.Errorf("registry: proxy: upstream challenge %q has no realm", challenge)
	}
	q := url.Values{}
	if params["service"] != "" {
		q.Set("service", params["service"])
	}
	q.Set("scope", "repository:"+name+":pull")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("registry: proxy token request to %s: %w", realm, err)
	}
	if p.cfg.Username != "" {
		req.SetBasicAuth(p.cfg.Username, p.cfg.Password)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("registry: proxy token from %s: %w", realm, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("registry: proxy token from %s: %s", realm, resp.Status)
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return "", fmt.Errorf("registry: proxy token from %s: %w", realm, err)
	}
	if t.Token == "" {
		t.Token = t.AccessToken
	}
	return t.Token, nil
}

// errUpstream is an unreachable upstream: a 502 the client may retry.
func errUpstream(what string, err error) error {
	return newErr("UNKNOWN", http.StatusBadGateway, "upstream %s: %v", what, err)
}

// upstreamError maps an upstream failure: its 404 stays a miss.
func upstreamError(resp *http.Response, what string, notFound error) error {
	if resp.StatusCode == http.StatusNotFound {
		return notFound
	}
	return newErr("UNKNOWN", http.StatusBadGateway, "upstream answered %s for %s", resp.Status, what)
}

// fetchManifest copies manifest ref of repository name from the upstream.
// Its blobs follow on demand.
func (s *Server) fetchManifest(ctx context.Context, name, ref string) error {
	resp, err := s.proxy.get(ctx, name, "/v2/"+name+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp, name+":"+ref, errManifestUnknown(ref))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return fmt.Errorf("registry: proxy read manifest %s:%s: %w", name, ref, err)
	}
	if len(body) > maxManifestSize {
		return errManifestInvalid("upstream manifest %s:%s larger than %d bytes", name, ref, maxManifestSize)
	}
	d := digest.Canonical.FromBytes(body)
	var tags []string
	if isDigestRef(ref) {
		want := digest.Digest(ref)
		if d = want.Algorithm().FromBytes(body); d != want {
			return errDigestInvalid("upstream manifest digest is %s, asked for %s", d, want)
		}
	} else {
		tags = []string{ref}
	}
	var m manifestFields
	if err := json.Unmarshal(body, &m); err != nil {
		return errManifestInvalid("upstream manifest %s:%s is not JSON: %v", name, ref, err)
	}
	mt := contentType(resp.Header.Get("Content-Type"))
	if m.MediaType != "" {
		mt = m.MediaType
	}
	rec := manifestRecord{MediaType: mt, Size: int64(len(body))}
	var referrer *ocispec.Descriptor
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
		referrer = &ocispec.Descriptor{MediaType: mt, Digest: d, Size: rec.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.blobs.writeBytes(body, d); err != nil {
		return err
	}
	if err := s.blobs.touch(d); err != nil {
		return err
	}
	return s.storeManifest(name, d, rec, tags, referrer)
}

// moved reports whether the upstream's tag now names another manifest
// than the cached one. An unreachable upstream leaves the cache in charge.
func (p *proxy) moved(ctx context.Context, name, tag string, local digest.Digest) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := p.do(ctx, http.MethodHead, name, "/v2/"+name+"/manifests/"+tag, manifestAccept)
	if err != nil {
		return false
	}
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	return resp.StatusCode == http.StatusOK && d != "" && d != local.String()
}

// fetchBlob copies blob d of repository name from the upstream, verified.
func (s *Server) fetchBlob(ctx context.Context, name string, d digest.Digest) error {
	resp, err := s.proxy.get(ctx, name, "/v2/"+name+"/blobs/"+d.String(), "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp, name+"@"+d.String(), errBlobUnknown(d.String()))
	}
	n, err := s.blobs.write(resp.Body, d)
	if err != nil {
		return err
	}
	return s.linkBlob(name, d, n)
}

// serveProxied serves a read from the store, filling a miss from the
// upstream first. It reports false for requests it does not handle.
func (s *Server) serveProxied(w http.ResponseWriter, r *http.Request, rt route) (bool, error) {
	switch rt.kind + " " + r.Method {
	case "manifests GET", "manifests HEAD":
		local, _, err := s.resolve(rt.name, rt.ref)
		if err == nil && !isDigestRef(rt.ref) && s.proxy.moved(r.Context(), rt.name, rt.ref, local) {
			err = errManifestUnknown(rt.ref)
		}
		if isCode(err, "MANIFEST_UNKNOWN") {
			if isDigestRef(rt.ref) {
				if _, err := parseDigest(rt.ref); err != nil {
					return true, err
				}
			} else if !tagRe().MatchString(rt.ref) {
				return true, errTagInvalid(rt.ref)
			}
			if err := s.fetchManifest(r.Context(), rt.name, rt.ref); err != nil {
				return true, err
			}
		}
		return true, s.getManifest(w, r, rt)
	case "blobs GET", "blobs HEAD":
		d, err := parseDigest(rt.ref)
		if err != nil {
			return true, err
		}
		if !s.hasBlobLink(rt.name, d) {
			if err := s.fetchBlob(r.Context(), rt.name, d); err != nil {
				return true, err
			}
		}
		return true, s.getBlob(w, r, rt)
	case "tags GET", "referrers GET":
		return false, nil
	}
	return true, errUnsupported("a pull-through cache takes no %s on %s", r.Method, rt.kind)
}

// parseChallenge reads the auth-params of a WWW-Authenticate value such as
// Bearer realm="…",service="…",scope="repository:a:pull,push": quoted
// values may hold commas.
func parseChallenge(v string) map[string]string {
	out := map[string]string{}
	_, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			after = after[1:]
			var b strings.Builder
			i := 0
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
		}
		out[strings.ToLower(strings.TrimSpace(k))] = val
	}
	return out
}
