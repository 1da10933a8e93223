// Package client is berth's registry client: it resolves references to
// manifests on an OCI distribution / Docker registry (v2 API), picks the
// platform's manifest from an index, streams blobs with retries and resumes,
// and authenticates anonymously, with basic auth or with bearer tokens from
// the registry's token service.
//
// Lifecycle: New once per daemon (or per pull); the Client caches tokens
// per registry and scope and is safe for concurrent use. A pull is
//
//	named, _ := ParseReference("127.0.0.1:5000/busybox")
//	img, _ := c.ResolveImage(ctx, named, platform)   // manifest + config
//	rc, _ := c.FetchBlob(ctx, named, img.Manifest.Layers[i]) // per layer
//
// and the caller (the image store) verifies digests while unpacking.
// Loopback registries (and Options.InsecureRegistries) are spoken to over
// plain HTTP unless they have a certs.d directory; anything else over HTTPS
// with the system's roots plus the host's certs.d certificates.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"berth/internal/errdefs"
)

// Credentials are what a user gave for one registry (docker's AuthConfig).
type Credentials struct {
	Username, Password string
	// RegistryToken is a bearer token to send as it is.
	RegistryToken string
	// IdentityToken is an OAuth2 refresh token an earlier login got from
	// the registry's token service (docker's "identitytoken"); token
	// requests then use it instead of the password.
	IdentityToken string
}

// Options configure a Client.
type Options struct {
	// HTTPClient sends the requests; http.DefaultClient's transport when nil.
	HTTPClient *http.Client
	// Credentials returns the credentials for a registry domain
	// ("docker.io", "127.0.0.1:5000"); anonymous when nil or empty.
	Credentials func(domain string) Credentials
	// UserAgent is sent with every request.
	UserAgent string
	// MaxAttempts bounds the tries of a request that fails with a network
	// error, 429 or 5xx, and the resumes of a blob download (5 when zero).
	MaxAttempts int
	// Backoff is the first wait between attempts, doubled each time (200ms
	// when zero).
	Backoff time.Duration
	// CertsDirs are searched for <dir>/<host>/ certificates (TLS roots and
	// client certificates); DefaultCertsDirs when nil.
	CertsDirs []string
	// InsecureRegistries are hosts (host:port) spoken to over plain HTTP,
	// as loopback registries always are.
	InsecureRegistries []string
	// Mirrors lists, by registry domain ("docker.io", "127.0.0.1:5000"),
	// the mirrors a pull tries before the registry (mirror.go).
	Mirrors map[string][]string
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts Options
	hc   *http.Client

	mu      sync.Mutex
	auth    map[string]*challenge   // by endpoint host
	tokens  map[string]token        // by endpoint host + " " + scope
	hosts   map[string]*http.Client // by endpoint host, for certs.d TLS
	mirrors map[string][]mirror     // by registry domain
	// refresh holds the refresh tokens token services handed out (at a
	// login, or rotated at a refresh), by realm + " " + service.
	refresh map[string]string
}

// New returns a Client. Mirrors that do not parse are left out with a
// warning; NewChecked reports them instead.
func New(opts Options) *Client {
	c, err := NewChecked(opts)
	if err != nil {
		slog.Warn("registry: ignoring the mirrors", "err", err)
		opts.Mirrors = nil
		c, _ = NewChecked(opts)
	}
	return c
}

// NewChecked returns a Client, or an error when a mirror is not a valid
// URL (a daemon checks its configuration with it at start).
func NewChecked(opts Options) (*Client, error) {
	mirrors, err := parseMirrors(opts.Mirrors)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	return &Client{opts: opts, hc: hc, auth: map[string]*challenge{}, tokens: map[string]token{}, hosts: map[string]*http.Client{},
		refresh: map[string]string{}, mirrors: mirrors}, nil
}

// request is one registry API call. Its body, if any, is in memory so that
// it can be sent again after a retry or an authentication round trip.
type request struct {
	method string
	host   string // endpoint host[:port]
	domain string // the reference's domain, for credentials
	path   string // "/v2/..." or an absolute URL (upload locations)
	query  url.Values
	scope  string // token scope, "repository:ns/repo:pull"
	// offline asks the token service for a refresh token too (login).
	offline bool
	// once: the body is a stream that cannot be sent again, so failures
	// are returned, not retried.
	once   bool
	header http.Header
	body   []byte
	// open, when set, streams the body instead (opened again for every
	// attempt); size is its length.
	open func() (io.Reader, error)
	size int64
}

func (c *Client) scheme(host string) string {
	for _, ms := range c.mirrors {
		for _, m := range ms {
			if m.host == host && m.scheme != "" {
				return m.scheme
			}
		}
	}
	if c.insecure(host) {
		return "http"
	}
	return "https"
}

func (c *Client) url(r *request) (string, error) {
	if strings.HasPrefix(r.path, "http://") || strings.HasPrefix(r.path, "https://") {
		u, err := url.Parse(r.path)
		if err != nil {
			return "", fmt.Errorf("registry location %q: %w", r.path, err)
		}
		if len(r.query) > 0 {
			q := u.Query()
			for k, v := range r.query {
				q[k] = v
			}
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	u, err := url.Parse(c.scheme(r.host) + "://" + r.host + r.path)
	if err != nil {
		return "", err
	}
	if len(r.query) > 0 {
		q := u.Query()
		for k, v := range r.query {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// do sends r, authenticating as the registry asks and retrying network
// errors, 429 and 5xx with exponential backoff. A 401 fetches a fresh
// token once. The caller closes the body of a returned response; any
// status is returned as a response, error statuses included.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	u, err := c.url(r)
	if err != nil {
		return nil, err
	}
	hc, err := c.clientFor(r.host)
	if err != nil {
		return nil, err
	}
	reauthed := false
	wait := c.opts.Backoff
	for attempt := 1; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		if r.open != nil {
			if body, err = r.open(); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, r.method, u, body)
		if err != nil {
			return nil, err
		}
		if r.open != nil {
			req.ContentLength = r.size
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		if c.opts.UserAgent != "" {
			req.Header.Set("User-Agent", c.opts.UserAgent)
		}
		if err := c.authorize(ctx, req, r); err != nil {
			return nil, urlError(r.method, u, err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil || attempt >= c.opts.MaxAttempts || permanent(err) || r.once {
				return nil, errdefs.Unavailable(err)
			}
			slog.Debug("registry: retrying", "url", u, "attempt", attempt, "err", err)
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			wait *= 2
			continue
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !reauthed:
			ch := parseChallenge(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
			if ch == nil {
				return nil, urlError(r.method, u, errdefs.Unauthorized(errors.New("unauthorized: the registry gave no authentication challenge")))
			}
			reauthed = true
			c.mu.Lock()
			c.auth[r.host] = ch
			delete(c.tokens, r.host+" "+r.scope)
			c.mu.Unlock()
			attempt-- // an authentication round trip is not a failed attempt
			continue
		case retryable(resp.StatusCode) && attempt < c.opts.MaxAttempts && !r.once:
			d := wait
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra >= 0 {
				d = min(time.Duration(ra)*time.Second, 30*time.Second)
			}
			drain(resp)
			slog.Debug("registry: retrying", "url", u, "attempt", attempt, "status", resp.StatusCode)
			if err := sleep(ctx, d); err != nil {
				return nil, err
			}
			wait *= 2
			continue
		}
		return resp, nil
	}
}

// permanent tells network errors that another try would only repeat: a
// refused connection (nobody listens), a name that does not resolve, and
// TLS failures.
func permanent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsTimeout {
		return true
	}
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &alert) || errors.As(err, &verify) ||
		errors.As(err, &header) || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		// The peer's alerts have an unexported type.
		strings.Contains(err.Error(), "remote error: tls: ")
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// sleep waits d, with jitter, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// urlError formats err as Go's HTTP client does, as docker shows it:
// `Head "http://host/v2/...": no basic auth credentials`.
func urlError(method, u string, err error) error {
	op := strings.ToUpper(method[:1]) + strings.ToLower(method[1:])
	e := &url.Error{Op: op, URL: u, Err: err}
	switch errdefs.ClassOf(err) {
	case errdefs.ClassUnauthorized:
		return errdefs.Unauthorized(e)
	case errdefs.ClassForbidden:
		return errdefs.Forbidden(e)
	}
	return e
}

// registryErrors is the distribution spec's error body.
type registryErrors struct {
	Errors []struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail,omitempty"`
	} `json:"errors"`
}

// Error is a registry's answer to a failed request.
type Error struct {
	Status int
	// Message is the registry's errors joined as docker prints them
	// ("manifest unknown: manifest unknown"), or the HTTP status.
	Message string
}

func (e *Error) Error() string { return e.Message }

// responseError reads a failed response's body into a classified *Error.
func responseError(resp *http.Response) error {
	defer drain(resp)
	e := &Error{Status: resp.StatusCode}
	var body registryErrors
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		var parts []string
		for _, re := range body.Errors {
			code := strings.ToLower(strings.ReplaceAll(re.Code, "_", " "))
			if re.Message != "" {
				parts = append(parts, code+": "+re.Message)
			} else {
				parts = append(parts, code)
			}
		}
		e.Message = strings.Join(parts, "; ")
	} else {
		e.Message = "unexpected status from registry: " + resp.Status
		if req := resp.Request; req != nil && req.URL != nil {
			e.Message += " (" + req.Method + " " + req.URL.Redacted() + ")"
			if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" && bytes.Contains(b, []byte("HTTPS server")) {
				// Go's and nginx's answer to plain HTTP on a TLS port.
				e.Message = "registry " + req.URL.Host + " speaks HTTPS, not HTTP: give the daemon its CA certificate as " +
					req.URL.Host + "/ca.crt in its registry certificate directory (/etc/berth/certs.d unless --registry-certs-dir)"
			}
		}
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return errdefs.NotFound(e)
	case http.StatusUnauthorized:
		return errdefs.Unauthorized(e)
	case http.StatusForbidden:
		return errdefs.Forbidden(e)
	case http.StatusBadRequest:
		return errdefs.InvalidParameter(e)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return errdefs.Unavailable(e)
	}
	return e
}
