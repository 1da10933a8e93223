package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"berth/internal/errdefs"
)

// challenge is a registry's WWW-Authenticate answer.
type challenge struct {
	scheme string            // "basic" or "bearer"
	params map[string]string // realm, service, scope, ...
}

// token is a bearer token and when to stop using it.
type token struct {
	value   string
	expires time.Time
}

// parseChallenge picks the first Bearer or Basic challenge of a 401.
func parseChallenge(values []string) *challenge {
	var basic *challenge
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		ch := &challenge{scheme: strings.ToLower(scheme), params: parseParams(rest)}
		switch ch.scheme {
		case "bearer":
			return ch
		case "basic":
			basic = ch
		}
	}
	return basic
}

// parseParams reads `realm="https://auth",service="registry",scope="a,b"`.
func parseParams(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(strings.TrimSpace(s), ",") {
		s = strings.TrimSpace(s)
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimSpace(s[eq+1:])
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			s = s[min(i+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out[key] = val
	}
	return out
}

func (c *Client) credentials(domain string) Credentials {
	if c.opts.Credentials == nil {
		return Credentials{}
	}
	return c.opts.Credentials(domain)
}

// authorize adds the Authorization header the registry asked for before,
// fetching a bearer token for r's scope when there is none yet. Until a
// registry has challenged, requests go out anonymously.
func (c *Client) authorize(ctx context.Context, req *http.Request, r *request) error {
	c.mu.Lock()
	ch := c.auth[r.host]
	tok, ok := c.tokens[r.host+" "+r.scope]
	c.mu.Unlock()
	if ch == nil {
		return nil
	}
	creds := c.credentials(r.domain)
	switch ch.scheme {
	case "basic":
		if creds.Username == "" && creds.Password == "" {
			return errdefs.Unauthorized(errors.New("no basic auth credentials"))
		}
		req.SetBasicAuth(creds.Username, creds.Password)
		return nil
	case "bearer":
		if creds.RegistryToken != "" {
			req.Header.Set("Authorization", "Bearer "+creds.RegistryToken)
			return nil
		}
		if !ok || time.Now().After(tok.expires) {
			var err error
			if tok, err = c.fetchToken(ctx, ch, r.scope, creds, r.offline); err != nil {
				return err
			}
			c.mu.Lock()
			c.tokens[r.host+" "+r.scope] = tok
			c.mu.Unlock()
		}
		req.Header.Set("Authorization", "Bearer "+tok.value)
	}
	return nil
}

// OAuthClientID is the client_id berth names itself with in OAuth2 token
// requests, as docker sends "docker".
const OAuthClientID = "berth"

// fetchToken asks the token service named by the challenge for a token
// covering scope. With an identity token (a refresh token from an earlier
// login) it is an OAuth2 refresh_token grant by POST; otherwise docker's
// token authentication, GET realm?service=&scope= with the user's basic
// credentials when there are any. offline (a login) asks for a refresh
// token as well: first by the OAuth2 password grant with
// access_type=offline, then, for token services without OAuth2, by
// offline_token=true on the GET.
func (c *Client) fetchToken(ctx context.Context, ch *challenge, scope string, creds Credentials, offline bool) (token, error) {
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return token{}, errdefs.Unauthorized(fmt.Errorf("bad token realm %q in the registry's challenge", realm))
	}
	service := ch.params["service"]
	key := realm + " " + service
	c.mu.Lock()
	refresh := c.refresh[key]
	c.mu.Unlock()
	if refresh == "" {
		refresh = creds.IdentityToken
	}
	if refresh != "" {
		return c.oauthToken(ctx, u, key, service, scope, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	}
	if offline && creds.Username != "" {
		t, err := c.oauthToken(ctx, u, key, service, scope, url.Values{
			"grant_type": {"password"}, "username": {creds.Username}, "password": {creds.Password},
			"access_type": {"offline"}})
		var se *tokenStatusError
		if !errors.As(err, &se) || !noOAuth(se.status) {
			return t, err
		}
		// Not an OAuth2 token service: docker's GET below.
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	// Several scopes (a cross-repository mount needs pull on the source
	// too) are separated by spaces and sent as repeated parameters.
	for _, sc := range strings.Fields(scope) {
		q.Add("scope", sc)
	}
	if offline {
		q.Set("offline_token", "true")
		q.Set("client_id", OAuthClientID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return token{}, err
	}
	if creds.Username != "" || creds.Password != "" {
		req.SetBasicAuth(creds.Username, creds.Password)
	}
	return c.tokenRequest(req, key)
}

// noOAuth tells the answers of a token service that does not do the
// OAuth2 password grant (as opposed to one refusing the credentials).
func noOAuth(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// oauthToken is an OAuth2 token request (RFC 6749 §4.3, §6): a form POSTed
// to the realm with the grant's fields, the client ID, service and scope.
func (c *Client) oauthToken(ctx context.Context, realm *url.URL, key, service, scope string, form url.Values) (token, error) {
	form.Set("client_id", OAuthClientID)
	if service != "" {
		form.Set("service", service)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.tokenRequest(req, key)
}

// tokenStatusError is a token service's refusal, with its status.
type tokenStatusError struct {
	status int
	err    error
}

func (e *tokenStatusError) Error() string { return e.err.Error() }
func (e *tokenStatusError) Unwrap() error { return e.err }

// tokenRequest sends a token request and reads the answer; a refresh token
// in it is kept under key for the next requests (and for Login).
func (c *Client) tokenRequest(req *http.Request, key string) (token, error) {
	realm := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	hc, err := c.clientFor(req.URL.Host)
	if err != nil {
		return token{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return token{}, errdefs.Unavailable(fmt.Errorf("fetch token from %s: %w", realm, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := &tokenStatusError{status: resp.StatusCode, err: fmt.Errorf("fetch token from %s: %w", realm, oauthError(resp))}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusBadRequest && req.Method == http.MethodPost {
			// An OAuth2 service answers 400 invalid_grant to a bad or
			// revoked refresh token.
			return token{}, errdefs.Unauthorized(err)
		}
		return token{}, err
	}
	var body struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return token{}, fmt.Errorf("fetch token from %s: %w", realm, err)
	}
	t := token{value: body.Token}
	if t.value == "" {
		t.value = body.AccessToken
	}
	if t.value == "" {
		return token{}, errdefs.Unauthorized(fmt.Errorf("fetch token from %s: empty token", realm))
	}
	if body.RefreshToken != "" {
		c.mu.Lock()
		c.refresh[key] = body.RefreshToken
		c.mu.Unlock()
	}
	// The spec's default lifetime is 60 s; renew a little early.
	life := 60
	if body.ExpiresIn > 0 {
		life = body.ExpiresIn
	}
	t.expires = time.Now().Add(time.Duration(life)*time.Second - 5*time.Second)
	return t, nil
}

// oauthError reads a token service's error: OAuth2's {"error",
// "error_description"} or the registry's errors.
func oauthError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var o struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &o) == nil && o.Error != "" {
		msg := o.Error
		if o.Description != "" {
			msg += ": " + o.Description
		}
		return &Error{Status: resp.StatusCode, Message: msg}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return responseError(resp)
}
