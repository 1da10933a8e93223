package client

import (
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
			if tok, err = c.fetchToken(ctx, ch, r.scope, creds); err != nil {
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

// fetchToken asks the token service named by the challenge for a token
// covering scope, with the user's credentials when there are any
// (docker's token authentication: GET realm?service=&scope=).
func (c *Client) fetchToken(ctx context.Context, ch *challenge, scope string, creds Credentials) (token, error) {
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return token{}, errdefs.Unauthorized(fmt.Errorf("bad token realm %q in the registry's challenge", realm))
	}
	q := u.Query()
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	// Several scopes (a cross-repository mount needs pull on the source
	// too) are separated by spaces and sent as repeated parameters.
	for _, sc := range strings.Fields(scope) {
		q.Add("scope", sc)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return token{}, err
	}
	if creds.Username != "" || creds.Password != "" {
		req.SetBasicAuth(creds.Username, creds.Password)
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	hc, err := c.clientFor(u.Host)
	if err != nil {
		return token{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return token{}, errdefs.Unavailable(fmt.Errorf("fetch token from %s: %w", realm, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := responseError(resp)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return token{}, errdefs.Unauthorized(fmt.Errorf("fetch token from %s: %w", realm, err))
		}
		return token{}, fmt.Errorf("fetch token from %s: %w", realm, err)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
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
	// The spec's default lifetime is 60 s; renew a little early.
	life := 60
	if body.ExpiresIn > 0 {
		life = body.ExpiresIn
	}
	t.expires = time.Now().Add(time.Duration(life)*time.Second - 5*time.Second)
	return t, nil
}
