package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// newOptRegistry is newTestRegistry with options that may need the
// server's own URL (a token realm).
func newOptRegistry(t *testing.T, opts func(url string) []Option) *testRegistry {
	t.Helper()
	root := t.TempDir()
	var s *Server
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	s, err := New(root, nil, opts(hs.URL)...)
	if err != nil {
		hs.Close()
		t.Fatalf("New(%s): %v", root, err)
	}
	r := &testRegistry{t: t, root: root, srv: s, http: hs}
	t.Cleanup(r.stop)
	return r
}

// writeHtpasswd writes user:bcrypt lines for user=password pairs.
func writeHtpasswd(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test users\n")
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasicAuth(t *testing.T) {
	htpasswd := writeHtpasswd(t, map[string]string{"alice": "secret", "bob": "hunter2", "carol": "pw"})
	r := newOptRegistry(t, func(string) []Option {
		return []Option{WithAuth(AuthConfig{Realm: "test realm", Htpasswd: htpasswd, ACL: []ACLEntry{
			{Account: "alice", Name: "*", Actions: []string{"*"}},
			{Account: "bob", Name: "*", Actions: []string{"pull"}},
			{Account: "carol", Name: "carol/*", Actions: []string{"pull", "push"}},
		}})}
	})
	for _, hdr := range []map[string]string{nil, {"Authorization": basic("alice", "wrong")}, {"Authorization": basic("nobody", "x")}} {
		resp, body := r.do("GET", "/v2/", hdr, nil)
		r.expect(resp, body, http.StatusUnauthorized)
		if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="test realm"` {
			t.Errorf("challenge %q", got)
		}
		if c := errorCode(t, body); c != "UNAUTHORIZED" {
			t.Errorf("code %s, want UNAUTHORIZED", c)
		}
	}
	alice := map[string]string{"Authorization": basic("alice", "secret")}
	resp, body := r.do("GET", "/v2/", alice, nil)
	r.expect(resp, body, http.StatusOK)
	resp, body = r.do("POST", "/v2/team/app/blobs/uploads/", alice, nil)
	r.expect(resp, body, http.StatusAccepted)

	resp, body = r.do("POST", "/v2/team/app/blobs/uploads/", map[string]string{"Authorization": basic("bob", "hunter2")}, nil)
	r.expect(resp, body, http.StatusForbidden)
	if c := errorCode(t, body); c != "DENIED" {
		t.Errorf("bob push: code %s, want DENIED", c)
	}
	// carol may not read team/app: her mount from it becomes an upload.
	d := r.pushMonolithicAs("team/app", []byte("private layer"), alice)
	carol := map[string]string{"Authorization": basic("carol", "pw")}
	for _, q := range []string{"?mount=" + d.String() + "&from=team/app", "?mount=" + d.String()} {
		resp, body = r.do("POST", "/v2/carol/x/blobs/uploads/"+q, carol, nil)
		r.expect(resp, body, http.StatusAccepted)
	}
	resp, body = r.do("POST", "/v2/team/other/blobs/uploads/?mount="+d.String()+"&from=team/app", alice, nil)
	r.expect(resp, body, http.StatusCreated)

	resp, body = r.do("GET", "/v2/team/app/tags/list", map[string]string{"Authorization": basic("bob", "hunter2")}, nil)
	r.expect(resp, body, http.StatusOK)
}

// tokenRegistry serves token auth with alice (everything under alice/),
// bob (pull only) and anonymous pull of public/*.
func tokenRegistry(t *testing.T) *testRegistry {
	htpasswd := writeHtpasswd(t, map[string]string{"alice": "secret", "bob": "hunter2"})
	return newOptRegistry(t, func(u string) []Option {
		return []Option{WithAuth(AuthConfig{Htpasswd: htpasswd, TokenRealm: u + "/token", TokenService: "test-registry", ACL: []ACLEntry{
			{Account: "alice", Name: "alice/*", Actions: []string{"pull", "push", "delete"}},
			{Account: "*", Name: "*", Actions: []string{"pull"}},
			{Account: "anonymous", Name: "public/*", Actions: []string{"pull"}},
		}})}
	})
}

// fetchToken does what a client does with a Bearer challenge.
func fetchToken(t *testing.T, r *testRegistry, challenge, auth string) (string, int) {
	t.Helper()
	params := parseChallenge(challenge)
	q := url.Values{"service": {params["service"]}}
	if params["scope"] != "" {
		q.Set("scope", params["scope"])
	}
	hdr := map[string]string{}
	if auth != "" {
		hdr["Authorization"] = auth
	}
	resp, body := r.do("GET", params["realm"]+"?"+q.Encode(), hdr, nil)
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	var tr struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" || tr.ExpiresIn <= 0 {
		t.Fatalf("token response %s (%v)", body, err)
	}
	return tr.Token, resp.StatusCode
}

func TestTokenAuth(t *testing.T) {
	r := tokenRegistry(t)
	realm := r.http.URL + "/token"

	// Challenges are distribution's, with the scope the request needs.
	resp, body := r.do("GET", "/v2/", nil, nil)
	r.expect(resp, body, http.StatusUnauthorized)
	if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="`+realm+`",service="test-registry"`; got != want {
		t.Errorf("ping challenge %q, want %q", got, want)
	}
	resp, body = r.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
	r.expect(resp, body, http.StatusUnauthorized)
	pushChallenge := resp.Header.Get("WWW-Authenticate")
	if want := `Bearer realm="` + realm + `",service="test-registry",scope="repository:alice/app:pull,push"`; pushChallenge != want {
		t.Errorf("push challenge %q, want %q", pushChallenge, want)
	}
	if c := errorCode(t, body); c != "UNAUTHORIZED" {
		t.Errorf("code %s, want UNAUTHORIZED", c)
	}

	// Wrong credentials fail at the token endpoint (docker login's check).
	if _, status := fetchToken(t, r, pushChallenge, basic("alice", "wrong")); status != http.StatusUnauthorized {
		t.Errorf("token with a wrong password: status %d, want 401", status)
	}

	// alice may push to alice/*.
	tok, _ := fetchToken(t, r, pushChallenge, basic("alice", "secret"))
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	resp, body = r.do("POST", "/v2/alice/app/blobs/uploads/", bearer, nil)
	r.expect(resp, body, http.StatusAccepted)
	// The token is for alice/app only.
	resp, body = r.do("GET", "/v2/alice/other/tags/list", bearer, nil)
	r.expect(resp, body, http.StatusForbidden)
	if c := errorCode(t, body); c != "DENIED" {
		t.Errorf("other repository: code %s, want DENIED", c)
	}

	// bob gets a pull-only token: push is denied, pull works.
	tok, _ = fetchToken(t, r, pushChallenge, basic("bob", "hunter2"))
	bob := map[string]string{"Authorization": "Bearer " + tok}
	resp, body = r.do("POST", "/v2/alice/app/blobs/uploads/", bob, nil)
	r.expect(resp, body, http.StatusForbidden)
	if c := errorCode(t, body); c != "DENIED" {
		t.Errorf("bob push: code %s, want DENIED", c)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, `,error="insufficient_scope"`) {
		t.Errorf("insufficient scope challenge %q", ch)
	}
	resp, body = r.do("GET", "/v2/alice/app/tags/list", bob, nil)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Errorf("bob pull: status %d, body %s", resp.StatusCode, body)
	}

	// Anonymous users pull public/* only.
	resp, _ = r.do("GET", "/v2/public/x/tags/list", nil, nil)
	anon, _ := fetchToken(t, r, resp.Header.Get("WWW-Authenticate"), "")
	resp, body = r.do("GET", "/v2/public/x/tags/list", map[string]string{"Authorization": "Bearer " + anon}, nil)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Errorf("anonymous public pull: status %d, body %s", resp.StatusCode, body)
	}
	resp, body = r.do("GET", "/v2/alice/app/tags/list", map[string]string{"Authorization": "Bearer " + anon}, nil)
	r.expect(resp, body, http.StatusForbidden)

	// A tampered token is invalid.
	p, sig, _ := strings.Cut(anon, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(p)
	forged := strings.Replace(string(claims), "public/x", "alice/app", 1)
	resp, body = r.do("GET", "/v2/alice/app/tags/list", map[string]string{"Authorization": "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + sig}, nil)
	r.expect(resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(ch, `,error="invalid_token"`) {
		t.Errorf("invalid token challenge %q", ch)
	}

	// The OAuth2 password grant issues tokens too.
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"secret"},
		"service": {"test-registry"}, "scope": {"repository:alice/app:pull"}}
	resp, body = r.do("POST", realm, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	r.expect(resp, body, http.StatusOK)
}

func TestTokenAuthFullPush(t *testing.T) {
	r := tokenRegistry(t)
	resp, _ := r.do("POST", "/v2/alice/app/blobs/uploads/", nil, nil)
	tok, _ := fetchToken(t, r, resp.Header.Get("WWW-Authenticate"), basic("alice", "secret"))
	// Send the token with every request of a whole image push and pull.
	authed := &testRegistry{t: t, root: r.root, srv: r.srv, http: r.http}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	orig := http.DefaultClient.Transport
	http.DefaultClient.Transport = headerTransport{"Authorization", "Bearer " + tok}
	t.Cleanup(func() { http.DefaultClient.Transport = orig })
	im := authed.pushImage("alice/app", "v1", nil)
	resp, body := authed.do("GET", "/v2/alice/app/manifests/v1", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil)
	r.expect(resp, body, http.StatusOK)
	if string(body) != string(im.manifest) {
		t.Errorf("pulled manifest differs")
	}
}

// headerTransport adds one header to every request.
type headerTransport struct{ k, v string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}

// pushMonolithicAs is pushMonolithic with extra headers (credentials).
func (r *testRegistry) pushMonolithicAs(repo string, b []byte, hdr map[string]string) digest.Digest {
	r.t.Helper()
	d := digest.FromBytes(b)
	h := map[string]string{"Content-Type": "application/octet-stream"}
	for k, v := range hdr {
		h[k] = v
	}
	resp, body := r.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), h, b)
	r.expect(resp, body, http.StatusCreated)
	return d
}
