package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// oauthFront is a registry front on loopback with an OAuth2 token service
// (RFC 6749 password and refresh_token grants by POST, docker's GET with
// basic credentials): requests with one of its access tokens pass to the
// registry behind it, the rest get a bearer challenge. User u, password p.
type oauthFront struct {
	srv *httptest.Server

	mu      sync.Mutex
	access  map[string]bool
	refresh map[string]bool
	grants  []string // "password offline", "refresh_token", "GET"
}

func newOAuthFront(t *testing.T, backend string) *oauthFront {
	t.Helper()
	f := &oauthFront{access: map[string]bool{}, refresh: map[string]bool{}}
	target, _ := url.Parse("http://" + backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.token(w, r)
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.access[tok]
		f.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+f.srv.URL+`/token",service="front"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *oauthFront) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *oauthFront) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.grants...)
}

func randToken(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (f *oauthFront) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	answer := func(offline bool) {
		a := randToken("acc-")
		f.access[a] = true
		body := map[string]any{"access_token": a, "expires_in": 300}
		if offline {
			rt := randToken("rt-")
			f.refresh[rt] = true
			body["refresh_token"] = rt
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if r.Method == http.MethodGet {
		f.grants = append(f.grants, "GET")
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			fail(http.StatusUnauthorized, "invalid_client")
			return
		}
		answer(r.URL.Query().Get("offline_token") == "true")
		return
	}
	r.ParseForm()
	form := r.PostForm
	if form.Get("service") != "front" || form.Get("client_id") == "" {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	switch form.Get("grant_type") {
	case "password":
		f.grants = append(f.grants, "password "+form.Get("access_type"))
		if form.Get("username") != "u" || form.Get("password") != "p" {
			fail(http.StatusUnauthorized, "invalid_grant")
			return
		}
		answer(form.Get("access_type") == "offline")
	case "refresh_token":
		f.grants = append(f.grants, "refresh_token")
		if !f.refresh[form.Get("refresh_token")] {
			fail(http.StatusBadRequest, "invalid_grant")
			return
		}
		answer(false)
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type")
	}
}

// TestIdentityTokenLogin: berth login against a registry whose token
// service does OAuth2 stores the identity token it returns (and no
// password) in config.json; push and pull, with berth's CLI and docker's,
// then trade that token for access tokens, never the password.
func TestIdentityTokenLogin(t *testing.T) {
	e := daemonEnv(t)
	backend := startPlainRegistry(t, e)
	front := newOAuthFront(t, backend.addr)
	host := front.host()
	ref := host + "/idt/busybox:v1"
	t.Cleanup(func() {
		e.berth(t, "rmi", ref)
		e.berth(t, "logout", host)
	})

	r := e.berthIn(t, "wrong\n", "login", "-u", "u", "--password-stdin", host)
	if r.code == 0 {
		t.Fatalf("login with a wrong password succeeded: %s", r)
	}
	must(t, e.berthIn(t, "p\n", "login", "-u", "u", "--password-stdin", host))
	if got := front.log(); len(got) == 0 || got[len(got)-1] != "password offline" {
		t.Fatalf("login's token requests: %q, want an offline password grant last", got)
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, "docker-config", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	json.Unmarshal(raw, &cf)
	entry := cf.Auths[host]
	if !strings.HasPrefix(entry.IdentityToken, "rt-") {
		t.Fatalf("config.json entry for %s has no identity token: %s", host, raw)
	}
	// docker keeps the user name, with an empty password
	if b, _ := base64.StdEncoding.DecodeString(entry.Auth); string(b) != "u:" {
		t.Errorf("config.json auth next to the identity token is %q, want \"u:\" (no password)", b)
	}

	after := len(front.log())
	must(t, e.berth(t, "tag", "busybox", ref))
	must(t, e.berth(t, "push", ref))
	must(t, e.berth(t, "rmi", ref))
	r = must(t, e.berth(t, "pull", ref))
	wantAll(t, "pull with the identity token", r.stdout, "Status: Downloaded newer image for "+ref+"\n")
	if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
		must(t, e.docker(t, "rmi", ref))
		r = must(t, e.docker(t, "pull", ref))
		wantAll(t, "docker pull with the identity token", r.stdout, "Status: Downloaded newer image for "+ref+"\n")
	}
	grants := front.log()[after:]
	if len(grants) == 0 {
		t.Fatal("push and pull asked for no token")
	}
	for _, g := range grants {
		if g != "refresh_token" {
			t.Errorf("token requests after login: %q, want only refresh_token grants", grants)
			break
		}
	}
}
