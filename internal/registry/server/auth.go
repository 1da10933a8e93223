package server

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AuthConfig turns on access control. With Htpasswd alone the registry
// asks for HTTP basic credentials (realm Realm). With TokenRealm it speaks
// the distribution token protocol: requests carry a bearer token that the
// registry's own token endpoint (served at TokenRealm's path) issues to
// clients authenticated against Htpasswd, scoped by ACL.
type AuthConfig struct {
	// Realm is the basic-auth realm; "berth-registry" when empty.
	Realm string `json:"realm,omitempty"`
	// Htpasswd is a file of user:bcrypt-hash lines (htpasswd -B).
	Htpasswd string `json:"htpasswd,omitempty"`
	// TokenRealm is the absolute URL clients fetch tokens from, such as
	// https://registry.example:5000/token.
	TokenRealm string `json:"tokenRealm,omitempty"`
	// TokenService is the service name in challenges and tokens' audience.
	TokenService string `json:"tokenService,omitempty"`
	// TokenIssuer names the issuer in tokens; "berth-registry" when empty.
	TokenIssuer string `json:"tokenIssuer,omitempty"`
	// TokenKey signs tokens (HMAC-SHA256); a random key when empty, so
	// tokens die with the process.
	TokenKey []byte `json:"-"`
	// TokenTTL is how long a token lives; 5 minutes when zero.
	TokenTTL time.Duration `json:"-"`
	// ACL grants actions; empty means every authenticated user may do
	// everything and anonymous users nothing.
	ACL []ACLEntry `json:"acl,omitempty"`
}

// ACLEntry grants Actions ("pull", "push", "delete", "*") on repositories
// matching Name ("*" for all, "team/*" for a prefix, else exact) to
// Account ("*": any authenticated user, "anonymous": no credentials).
// The catalog is the resource named "catalog" and needs action "*".
type ACLEntry struct {
	Account string   `json:"account"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Access is one grant or need: actions on a typed resource, the "access"
// claim of a distribution token.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (a Access) scope() string { return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",") }

// tokenClaims is the signed payload of a token.
type tokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	Access    []Access `json:"access"`
}

// authorizer checks requests against an AuthConfig.
type authorizer struct {
	cfg       AuthConfig
	users     map[string][]byte
	tokenPath string
}

func newAuthorizer(c AuthConfig) (*authorizer, error) {
	if c.Realm == "" {
		c.Realm = "berth-registry"
	}
	if c.TokenIssuer == "" {
		c.TokenIssuer = "berth-registry"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 5 * time.Minute
	}
	a := &authorizer{cfg: c, users: map[string][]byte{}}
	if c.Htpasswd != "" {
		users, err := readHtpasswd(c.Htpasswd)
		if err != nil {
			return nil, err
		}
		a.users = users
	}
	if c.TokenRealm != "" {
		u, err := url.Parse(c.TokenRealm)
		if err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("registry: token realm %q is not an absolute URL", c.TokenRealm)
		}
		a.tokenPath = u.Path
		if a.tokenPath == "" || strings.HasPrefix(a.tokenPath, "/v2") {
			return nil, fmt.Errorf("registry: token realm %q needs a path outside /v2/", c.TokenRealm)
		}
		if len(a.cfg.TokenKey) == 0 {
			a.cfg.TokenKey = make([]byte, 32)
			rand.Read(a.cfg.TokenKey)
		}
	} else if c.Htpasswd == "" {
		return nil, errors.New("registry: auth needs an htpasswd file or a token realm")
	}
	return a, nil
}

// readHtpasswd reads user:hash lines; only bcrypt hashes are accepted.
func readHtpasswd(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: read htpasswd %s: %w", path, err)
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("registry: htpasswd %s line %d: want user:bcrypt-hash", path, n)
		}
		users[user] = []byte(hash)
	}
	return users, nil
}

// login checks basic credentials; ok is false for absent or wrong ones.
func (a *authorizer) login(r *http.Request) (user string, present, ok bool) {
	u, p, present := r.BasicAuth()
	if !present {
		return "", false, false
	}
	hash, known := a.users[u]
	if !known {
		// Spend the same time as a real check, so names don't leak.
		bcrypt.CompareHashAndPassword([]byte("$2a$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv"), []byte(p))
		return "", true, false
	}
	return u, true, bcrypt.CompareHashAndPassword(hash, []byte(p)) == nil
}

// granted returns the subset of the wanted actions the ACL gives account
// ("" for anonymous) on resource.
func (a *authorizer) granted(account string, want Access) []string {
	if len(a.cfg.ACL) == 0 {
		if account == "" {
			return nil
		}
		return want.Actions
	}
	var out []string
	for _, e := range a.cfg.ACL {
		switch {
		case e.Account == "anonymous" && account == "":
		case e.Account == "*" && account != "":
		case e.Account == account && account != "":
		default:
			continue
		}
		if !globMatch(e.Name, want.Name) {
			continue
		}
		for _, act := range want.Actions {
			if (slices.Contains(e.Actions, act) || slices.Contains(e.Actions, "*")) && !slices.Contains(out, act) {
				out = append(out, act)
			}
		}
	}
	return out
}

func globMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// need returns what a request requires; empty for /v2/ itself, which only
// needs a valid identity.
func need(r *http.Request) []Access {
	if r.URL.Path == "/v2/_catalog" {
		return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return []Access{{Type: "repository", Name: rt.name, Actions: []string{"pull"}}}
	case http.MethodDelete:
		return []Access{{Type: "repository", Name: rt.name, Actions: []string{"delete"}}}
	default:
		return []Access{{Type: "repository", Name: rt.name, Actions: []string{"pull", "push"}}}
	}
}

// check authorizes r. It returns false after writing the 401 challenge or
// the 403 denial. A cross-repository mount whose source is not readable is
// turned into a plain upload, as distribution does.
func (a *authorizer) check(w http.ResponseWriter, r *http.Request) bool {
	needs := need(r)
	var account string
	var have []Access
	if a.cfg.TokenRealm == "" {
		user, _, ok := a.login(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.cfg.Realm))
			writeError(w, newErr("UNAUTHORIZED", http.StatusUnauthorized, "authentication required"))
			return false
		}
		account = user
		for _, n := range needs {
			have = append(have, Access{Type: n.Type, Name: n.Name, Actions: a.granted(account, n)})
		}
	} else {
		tok, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var claims *tokenClaims
		var err error
		if isBearer {
			claims, err = a.verify(tok)
		}
		if claims == nil {
			ch := a.challenge(needs)
			msg := "authentication required"
			if err != nil {
				ch += `,error="invalid_token"`
				msg = err.Error()
			}
			w.Header().Set("WWW-Authenticate", ch)
			writeError(w, newErr("UNAUTHORIZED", http.StatusUnauthorized, "%s", msg))
			return false
		}
		have = claims.Access
	}
	for _, n := range needs {
		for _, act := range n.Actions {
			if !allows(have, n.Type, n.Name, act) {
				if a.cfg.TokenRealm != "" {
					w.Header().Set("WWW-Authenticate", a.challenge(needs)+`,error="insufficient_scope"`)
				}
				writeError(w, newErr("DENIED", http.StatusForbidden, "requested access to %s %s (%s) is denied", n.Type, n.Name, act))
				return false
			}
		}
	}
	if r.Method == http.MethodPost {
		q := r.URL.Query()
		if from := q.Get("from"); q.Get("mount") != "" {
			// A mount without from would reach any repository's blob.
			ok := false
			switch {
			case from == "":
			case a.cfg.TokenRealm == "":
				ok = len(a.granted(account, Access{Type: "repository", Name: from, Actions: []string{"pull"}})) == 1
			default:
				ok = allows(have, "repository", from, "pull")
			}
			if !ok {
				q.Del("mount")
				q.Del("from")
				r.URL.RawQuery = q.Encode()
			}
		}
	}
	return true
}

func allows(have []Access, typ, name, action string) bool {
	for _, h := range have {
		if h.Type == typ && h.Name == name && (slices.Contains(h.Actions, action) || slices.Contains(h.Actions, "*")) {
			return true
		}
	}
	return false
}

// challenge is the Bearer WWW-Authenticate value distribution sends.
func (a *authorizer) challenge(needs []Access) string {
	s := fmt.Sprintf("Bearer realm=%q,service=%q", a.cfg.TokenRealm, a.cfg.TokenService)
	if len(needs) > 0 {
		scopes := make([]string, len(needs))
		for i, n := range needs {
			scopes[i] = n.scope()
		}
		s += fmt.Sprintf(",scope=%q", strings.Join(scopes, " "))
	}
	return s
}

func (a *authorizer) sign(c tokenClaims) string {
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, a.cfg.TokenKey)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify checks a token's signature, lifetime and audience.
func (a *authorizer) verify(tok string) (*tokenClaims, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errors.New("malformed token")
	}
	m := hmac.New(sha256.New, a.cfg.TokenKey)
	m.Write([]byte(p))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return nil, errors.New("token signature invalid")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, errors.New("malformed token")
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("malformed token claims")
	}
	now := time.Now().Unix()
	if now >= c.ExpiresAt || now+60 < c.NotBefore {
		return nil, errors.New("token expired")
	}
	if c.Audience != a.cfg.TokenService || c.Issuer != a.cfg.TokenIssuer {
		return nil, errors.New("token not issued for this registry")
	}
	return &c, nil
}

// parseScope reads "type:name:actions"; the name may hold colons (a port).
func parseScope(s string) (Access, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndex(rest, ":")
	if !ok || i <= 0 {
		return Access{}, false
	}
	return Access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}, true
}

// serveToken is the token endpoint: GET with basic credentials (or none,
// for anonymous access) and ?service=&scope=, or the OAuth2 password grant
// by POST. Wrong credentials are a 401, which is how `docker login` learns
// of them; scopes the ACL does not grant are left out of the token.
func (a *authorizer) serveToken(w http.ResponseWriter, r *http.Request) {
	var user, pass, service string
	var scopes []string
	var present bool
	switch r.Method {
	case http.MethodGet:
		user, pass, present = r.BasicAuth()
		service = r.URL.Query().Get("service")
		for _, s := range r.URL.Query()["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			writeError(w, newErr("UNSUPPORTED", http.StatusBadRequest, "token request form: %v", err))
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			writeError(w, newErr("UNSUPPORTED", http.StatusBadRequest, "grant_type %q not supported", gt))
			return
		}
		user, pass, present = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		service = r.PostForm.Get("service")
		scopes = strings.Fields(r.PostForm.Get("scope"))
	default:
		writeError(w, errUnsupported("method %s not allowed on the token endpoint", r.Method))
		return
	}
	if service != "" && service != a.cfg.TokenService {
		writeError(w, newErr("DENIED", http.StatusBadRequest, "unknown service %q", service))
		return
	}
	account := ""
	if present {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		u, _, ok := a.login(req)
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.cfg.Realm))
			writeError(w, newErr("UNAUTHORIZED", http.StatusUnauthorized, "invalid username or password"))
			return
		}
		account = u
	}
	access := []Access{}
	for _, s := range scopes {
		want, ok := parseScope(s)
		if !ok {
			writeError(w, newErr("UNSUPPORTED", http.StatusBadRequest, "invalid scope %q", s))
			return
		}
		if got := a.granted(account, want); len(got) > 0 {
			access = append(access, Access{Type: want.Type, Name: want.Name, Actions: got})
		}
	}
	now := time.Now()
	tok := a.sign(tokenClaims{
		Issuer: a.cfg.TokenIssuer, Subject: account, Audience: a.cfg.TokenService,
		ExpiresAt: now.Add(a.cfg.TokenTTL).Unix(), NotBefore: now.Unix(), IssuedAt: now.Unix(), Access: access,
	})
	body, _ := json.Marshal(map[string]any{
		"token": tok, "access_token": tok,
		"expires_in": int(a.cfg.TokenTTL.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
