package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// htpasswdFile writes a bcrypt htpasswd file for user u, password p.
func htpasswdFile(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("p"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte("u:"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBerthRegistry runs `berth registry serve` with htpasswd users and
// its token endpoint, so that clients go through the bearer flow.
func startBerthRegistry(t *testing.T, e *env) string {
	addr := freeAddr(t)
	runRegistry(t, addr, e.bin, "registry", "serve", "--addr", addr, "--root", t.TempDir(),
		"--htpasswd", htpasswdFile(t), "--auth-token-realm", "http://"+addr+"/token", "--log-level", "error")
	return addr
}

// startDistribution runs Debian's docker-registry (distribution 2.8) with
// htpasswd basic auth.
func startDistribution(t *testing.T) string {
	t.Helper()
	return runDistribution(t, true)
}

func wantAll(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestBerthPushPull: berth login (bearer tokens), push, a second push
// finding the layers, a mount into another repository, push -a, rmi,
// pull giving the same image ID, run, logout.
func TestBerthPushPull(t *testing.T) {
	e := daemonEnv(t)
	host := startBerthRegistry(t, e)
	repo := host + "/it/busybox"
	ref := repo + ":v1"
	id := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", "busybox")).stdout)
	t.Cleanup(func() {
		e.berth(t, "rmi", ref, repo+":v2", host+"/it/other:v1")
		e.berth(t, "logout", host)
	})

	r := e.berthIn(t, "wrong\n", "login", "-u", "u", "--password-stdin", host)
	if r.code != 1 || !strings.Contains(r.stderr, "401 Unauthorized") {
		t.Errorf("login with a wrong password: %s", r)
	}
	r = must(t, e.berthIn(t, "p\n", "login", "-u", "u", "--password-stdin", host))
	wantAll(t, "login", r.stdout, "Login Succeeded\n")

	must(t, e.berth(t, "tag", "busybox", ref))
	r = must(t, e.berth(t, "push", ref))
	wantAll(t, "push", r.stdout, "The push refers to repository ["+repo+"]\n", ": Preparing\n", ": Pushed\n", "v1: digest: sha256:", " size: ")
	digestLine := r.stdout[strings.Index(r.stdout, "v1: digest: "):]
	pushed := strings.TrimPrefix(digestLine[:strings.Index(digestLine, " size:")], "v1: digest: ")
	// berth's summary (stderr, so that stdout stays docker's).
	wantAll(t, "push summary", r.stderr, "pushed "+ref+": "+pushed+", 1 layers (1 uploaded, ")

	r = must(t, e.berth(t, "push", ref))
	wantAll(t, "second push", r.stdout, ": Layer already exists\n", digestLine)
	if strings.Contains(r.stdout, ": Pushed") {
		t.Errorf("second push uploaded again:\n%s", r.stdout)
	}

	must(t, e.berth(t, "tag", "busybox", host+"/it/other:v1"))
	r = must(t, e.berth(t, "push", host+"/it/other:v1"))
	wantAll(t, "push to another repository", r.stdout, ": Mounted from it/busybox\n")

	must(t, e.berth(t, "tag", "busybox", repo+":v2"))
	r = must(t, e.berth(t, "push", "-a", repo))
	wantAll(t, "push -a", r.stdout, "v1: digest: ", "v2: digest: ")

	must(t, e.berth(t, "rmi", ref))
	r = must(t, e.berth(t, "pull", ref))
	wantAll(t, "pull", r.stdout, "Status: Downloaded newer image for "+ref+"\n")
	// busybox is still loaded: its layer is there, nothing to download.
	wantAll(t, "pull summary", r.stderr, "pulled "+ref+": "+pushed+", 1 layers (0 downloaded, 0B) in ")
	if got := strings.TrimSpace(must(t, e.berth(t, "image", "inspect", "-f", "{{.Id}}", ref)).stdout); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
	r = must(t, e.berth(t, "run", "--rm", "--network", "none", ref, "echo", "pushed-and-pulled"))
	if r.stdout != "pushed-and-pulled\n" {
		t.Errorf("run of the pulled image: %s", r)
	}

	r = must(t, e.berth(t, "logout", host))
	wantAll(t, "logout", r.stdout, "Removing login credentials for "+host+"\n")
	r = e.berth(t, "push", ref)
	if r.code == 0 {
		t.Errorf("push after logout succeeded: %s", r)
	}
}

// TestDockerPushDistribution: the docker CLI logs in, pushes and pulls
// through berth against distribution 2.8 with basic auth.
func TestDockerPushDistribution(t *testing.T) {
	e := daemonEnv(t)
	host := startDistribution(t)
	ref := host + "/d/busybox:v1"
	id := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", "busybox")).stdout)
	t.Cleanup(func() {
		e.docker(t, "rmi", ref)
		e.docker(t, "logout", host)
	})

	r := e.dockerIn(t, "wrong\n", "login", "-u", "u", "--password-stdin", host)
	if r.code != 1 || !strings.Contains(r.stderr, "login attempt to http://"+host+"/v2/ failed with status: 401 Unauthorized") {
		t.Errorf("docker login with a wrong password: %s", r)
	}
	r = must(t, e.dockerIn(t, "p\n", "login", "-u", "u", "--password-stdin", host))
	wantAll(t, "docker login", r.stdout, "Login Succeeded")

	must(t, e.docker(t, "tag", "busybox", ref))
	r = must(t, e.docker(t, "push", ref))
	wantAll(t, "docker push", r.stdout, "The push refers to repository ["+host+"/d/busybox]\n", ": Pushed\n", "v1: digest: sha256:")
	r = must(t, e.docker(t, "push", ref))
	wantAll(t, "second docker push", r.stdout, ": Layer already exists\n")

	must(t, e.docker(t, "rmi", ref))
	r = must(t, e.docker(t, "pull", ref))
	wantAll(t, "docker pull", r.stdout, "Status: Downloaded newer image for "+ref+"\n")
	if got := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", ref)).stdout); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
	r = must(t, e.docker(t, "run", "--rm", "--network", "none", ref, "echo", "via-distribution"))
	if r.stdout != "via-distribution\n" {
		t.Errorf("docker run of the pulled image: %s", r)
	}

	must(t, e.docker(t, "logout", host))
	r = e.docker(t, "push", ref)
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "no basic auth credentials") {
		t.Errorf("docker push after logout: %s", r)
	}
}

// TestDockerPushBerthRegistry: the docker CLI through berth against
// berth's own registry with token authentication.
func TestDockerPushBerthRegistry(t *testing.T) {
	e := daemonEnv(t)
	host := startBerthRegistry(t, e)
	ref := host + "/dk/hello:v1"
	id := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", "hello")).stdout)
	t.Cleanup(func() {
		e.docker(t, "rmi", ref)
		e.docker(t, "logout", host)
	})
	r := must(t, e.dockerIn(t, "p\n", "login", "-u", "u", "--password-stdin", host))
	wantAll(t, "docker login", r.stdout, "Login Succeeded")
	must(t, e.docker(t, "tag", "hello", ref))
	r = must(t, e.docker(t, "push", ref))
	wantAll(t, "docker push", r.stdout, ": Pushed\n", "v1: digest: sha256:")
	must(t, e.docker(t, "rmi", ref))
	must(t, e.docker(t, "pull", ref))
	if got := strings.TrimSpace(must(t, e.docker(t, "image", "inspect", "-f", "{{.Id}}", ref)).stdout); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
	r = e.docker(t, "push", host+"/dk/nosuch:v1")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "tag does not exist: "+host+"/dk/nosuch:v1") {
		t.Errorf("push of a missing tag: %s", r)
	}
}

// TestPushAPIStream reads the push's progress stream off the API: the
// layer's Preparing, Pushing with byte counts, Pushed, the digest line
// and the aux message the CLI uses.
func TestPushAPIStream(t *testing.T) {
	e := daemonEnv(t)
	host := startBerthRegistry(t, e)
	ref := host + "/api/hello:v1"
	must(t, e.berth(t, "tag", "hello", ref))
	t.Cleanup(func() { e.berth(t, "rmi", ref) })

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
	req, _ := http.NewRequest("POST", "http://berth/v1.47/images/"+host+"/api/hello/push?tag=v1", nil)
	req.Header.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type msg struct {
		Status         string
		ID             string
		ProgressDetail *struct{ Current, Total int64 }
		Aux            *struct {
			Tag, Digest string
			Size        int
		}
		Error string
	}
	var msgs []msg
	dec := json.NewDecoder(resp.Body)
	for {
		var m msg
		if err := dec.Decode(&m); err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	if resp.StatusCode != 200 || len(msgs) < 5 {
		t.Fatalf("push: %d %+v", resp.StatusCode, msgs)
	}
	statuses := map[string]bool{}
	var pushing *msg
	for i, m := range msgs {
		if m.Error != "" {
			t.Fatalf("push error: %s", m.Error)
		}
		statuses[m.Status] = true
		if m.Status == "Pushing" {
			pushing = &msgs[i]
		}
	}
	if msgs[0].Status != "The push refers to repository ["+host+"/api/hello]" || !statuses["Preparing"] || !statuses["Pushed"] {
		t.Errorf("statuses: %+v", msgs)
	}
	if pushing == nil || pushing.ProgressDetail == nil || pushing.ProgressDetail.Total == 0 || pushing.ProgressDetail.Current != pushing.ProgressDetail.Total {
		t.Errorf("last Pushing message: %+v", pushing)
	}
	last := msgs[len(msgs)-1]
	if last.Aux == nil || last.Aux.Tag != "v1" || !strings.HasPrefix(last.Aux.Digest, "sha256:") || last.Aux.Size == 0 {
		t.Fatalf("aux: %+v", last)
	}
	if want := fmt.Sprintf("v1: digest: %s size: %d", last.Aux.Digest, last.Aux.Size); msgs[len(msgs)-2].Status != want {
		t.Errorf("digest line %q, want %q", msgs[len(msgs)-2].Status, want)
	}
	r := must(t, e.berth(t, "image", "inspect", "-f", "{{json .RepoDigests}}", ref))
	if !strings.Contains(r.stdout, host+"/api/hello@"+last.Aux.Digest) {
		t.Errorf("RepoDigests after push: %s", r.stdout)
	}
}
