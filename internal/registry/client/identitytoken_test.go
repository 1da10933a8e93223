package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
)

// oauthDouble is a token service and a registry behind it: the registry
// takes any access token the service issued; the service does OAuth2 by
// POST (password and refresh_token grants) and docker's GET, and logs
// each grant it served.
type oauthDouble struct {
	srv    *httptest.Server
	noPOST bool // answer POST with 404, as a GET-only token service

	mu     sync.Mutex
	grants []string // "POST password offline", "POST refresh_token rt-1", "GET basic offline"...
	issued map[string]bool
}

func newOAuthDouble(t *testing.T) *oauthDouble {
	d := &oauthDouble{issued: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *oauthDouble) host() string { return strings.TrimPrefix(d.srv.URL, "http://") }

func (d *oauthDouble) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.grants...)
}

func (d *oauthDouble) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.URL.Path == "/token" {
		d.token(w, r)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !d.issued[tok] {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+d.srv.URL+`/token",service="double"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
}

// token serves one token request. Called with d.mu held.
func (d *oauthDouble) token(w http.ResponseWriter, r *http.Request) {
	access := func(refresh string) {
		a := "acc-" + string(rune('a'+len(d.issued)))
		d.issued[a] = true
		body := map[string]any{"access_token": a, "expires_in": 300}
		if refresh != "" {
			body["refresh_token"] = refresh
		}
		json.NewEncoder(w).Encode(body)
	}
	deny := func(status int, code string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	switch r.Method {
	case http.MethodPost:
		if d.noPOST {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		r.ParseForm()
		f := r.PostForm
		if f.Get("client_id") != OAuthClientID || f.Get("service") != "double" {
			deny(http.StatusBadRequest, "invalid_request")
			return
		}
		switch f.Get("grant_type") {
		case "password":
			d.grants = append(d.grants, "POST password "+f.Get("access_type"))
			if f.Get("username") != "u" || f.Get("password") != "p" {
				deny(http.StatusUnauthorized, "invalid_grant")
				return
			}
			rt := ""
			if f.Get("access_type") == "offline" {
				rt = "rt-1"
			}
			access(rt)
		case "refresh_token":
			d.grants = append(d.grants, "POST refresh_token "+f.Get("refresh_token")+" "+f.Get("scope"))
			if f.Get("refresh_token") != "rt-1" {
				deny(http.StatusBadRequest, "invalid_grant")
				return
			}
			access("")
		default:
			deny(http.StatusBadRequest, "unsupported_grant_type")
		}
	case http.MethodGet:
		u, p, ok := r.BasicAuth()
		q := r.URL.Query()
		d.grants = append(d.grants, "GET basic offline="+q.Get("offline_token"))
		if !ok || u != "u" || p != "p" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rt := ""
		if q.Get("offline_token") == "true" && q.Get("client_id") == OAuthClientID {
			rt = "rt-1"
		}
		access(rt)
	}
}

// TestIdentityToken: login gets a refresh token by the OAuth2 password
// grant; later requests trade it (never the password) for access tokens.
func TestIdentityToken(t *testing.T) {
	d := newOAuthDouble(t)
	ctx := context.Background()
	login := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "p"} }})
	idt, err := login.Login(ctx, d.host())
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if idt != "rt-1" {
		t.Fatalf("login returned identity token %q, want rt-1", idt)
	}
	if got := d.log(); len(got) != 1 || got[0] != "POST password offline" {
		t.Fatalf("login's grants: %q, want one offline password grant", got)
	}

	named, _ := reference.ParseNormalizedNamed(d.host() + "/ns/app:v1")
	c := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", IdentityToken: idt} }})
	_, err = c.Resolve(ctx, named)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("resolve with the identity token: %v, want the registry's not found (authenticated)", err)
	}
	got := d.log()[1:]
	if len(got) != 1 || got[0] != "POST refresh_token rt-1 repository:ns/app:pull" {
		t.Fatalf("grants after login: %q, want one refresh_token grant for the pull scope", got)
	}

	// A login with the stored identity token (docker login without a
	// password) checks it by a refresh and hands it back.
	if idt2, err := c.Login(ctx, d.host()); err != nil || idt2 != "rt-1" {
		t.Fatalf("login with the identity token: %q, %v", idt2, err)
	}

	bad := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", IdentityToken: "revoked"} }})
	if _, err := bad.Resolve(ctx, named); errdefs.ClassOf(err) != errdefs.ClassUnauthorized || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("revoked identity token: %v, want unauthorized invalid_grant", err)
	}
	if _, err := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "wrong"} }}).Login(ctx, d.host()); errdefs.ClassOf(err) != errdefs.ClassUnauthorized {
		t.Fatalf("login with a wrong password: %v, want unauthorized", err)
	}
}

// TestIdentityTokenGETService: a token service without OAuth2 gives the
// refresh token on docker's GET with offline_token=true.
func TestIdentityTokenGETService(t *testing.T) {
	d := newOAuthDouble(t)
	d.noPOST = true
	login := New(Options{Credentials: func(string) Credentials { return Credentials{Username: "u", Password: "p"} }})
	idt, err := login.Login(context.Background(), d.host())
	if err != nil || idt != "rt-1" {
		t.Fatalf("login: %q, %v; want rt-1", idt, err)
	}
	if got := d.log(); len(got) != 1 || got[0] != "GET basic offline=true" {
		t.Fatalf("grants: %q, want one offline GET", got)
	}
}
