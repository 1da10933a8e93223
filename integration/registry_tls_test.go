package integration

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/internal/fixture"
)

// testPKI is a CA made by the test, with the server and client
// certificates it signed.
type testPKI struct {
	ca         *x509.Certificate
	caPEM      []byte
	serverCert tls.Certificate
	serverPEM  []byte // serverCert's certificate and key, PEM
	serverKey  []byte
	clientCert []byte // PEM
	clientKey  []byte // PEM
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca := fixture.NewCA(t, "berth integration CA")
	p := &testPKI{ca: ca.Cert, caPEM: ca.PEM}
	p.serverPEM, p.serverKey = ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	var err error
	if p.serverCert, err = tls.X509KeyPair(p.serverPEM, p.serverKey); err != nil {
		t.Fatal(err)
	}
	p.clientCert, p.clientKey = ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "berth-client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return p
}

// mtlsFront serves HTTPS on loopback with pki's server certificate,
// demands a client certificate signed by pki's CA, and passes requests to
// the plain registry at backend. It returns host:port.
func mtlsFront(t *testing.T, pki *testPKI, backend string) string {
	t.Helper()
	u, _ := url.Parse("http://" + backend)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// TestRegistryTLSClientCerts: a daemon whose registry certificate
// directory (daemon.json "registry-certs-dir", a temp dir standing in for
// /etc/berth/certs.d) holds <host:port>/ca.crt, client.cert and client.key
// pulls over HTTPS from a registry that requires client certificates, and
// runs the image; the docker CLI logs in to, pushes to and pulls from
// `berth registry serve --tls-cert` trusting only the test's CA. Without the client certificate the TLS handshake is
// refused; without the CA the server is not trusted; both are clear
// errors and leave no image.
func TestRegistryTLSClientCerts(t *testing.T) {
	e := daemonEnv(t)
	reg := startPlainRegistry(t, e)
	src := reg.addr + "/tls/busybox:v1"
	must(t, e.berth(t, "tag", "busybox", src))
	t.Cleanup(func() { e.berth(t, "rmi", src) })
	must(t, e.berth(t, "push", src))

	pki := newTestPKI(t)
	front := mtlsFront(t, pki, reg.addr)
	certs := t.TempDir()
	hostDir := filepath.Join(certs, front)
	if err := os.Mkdir(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ca.crt": pki.caPEM, "client.cert": pki.clientCert, "client.key": pki.clientKey} {
		if err := os.WriteFile(filepath.Join(hostDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e2 := startConfiguredDaemon(t, e, map[string]any{"registry-certs-dir": certs})
	ref := front + "/tls/busybox:v1"

	r := must(t, e2.berth(t, "pull", ref))
	wantAll(t, "pull over mutual TLS", r.stdout, "Status: Downloaded newer image for "+ref+"\n")
	r = must(t, e2.berth(t, "run", "--rm", "--network", "none", ref, "echo", "over-mtls"))
	if r.stdout != "over-mtls\n" {
		t.Errorf("run of the image pulled over TLS: %s", r)
	}
	must(t, e2.berth(t, "rmi", ref))

	// berth's own registry over TLS (the test CA's server certificate)
	// with htpasswd users: the docker CLI logs in through this daemon
	// (POST /auth over TLS), pushes what it pulled and pulls it back.
	tlsDir := t.TempDir()
	certFile, keyFile := filepath.Join(tlsDir, "server.crt"), filepath.Join(tlsDir, "server.key")
	os.WriteFile(certFile, pki.serverPEM, 0o600)
	os.WriteFile(keyFile, pki.serverKey, 0o600)
	berthTLS := freeAddr(t)
	startTLSRegistry(t, e.bin, berthTLS, pki, "--tls-cert", certFile, "--tls-key", keyFile, "--htpasswd", htpasswdFile(t))
	caDir := filepath.Join(certs, berthTLS)
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caDir, "ca.crt"), pki.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, e2.berth(t, "pull", ref))
	pushed := berthTLS + "/tls/busybox:v2"
	must(t, e2.docker(t, "tag", ref, pushed))
	r = e2.docker(t, "push", pushed)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "no basic auth credentials") {
		t.Errorf("docker push to the TLS registry before login: %s", r)
	}
	r = must(t, e2.dockerIn(t, "p\n", "login", "-u", "u", "--password-stdin", berthTLS))
	wantAll(t, "docker login over TLS", r.stdout, "Login Succeeded")
	t.Cleanup(func() { e2.docker(t, "logout", berthTLS) })
	r = must(t, e2.docker(t, "push", pushed))
	wantAll(t, "docker push over TLS", r.stdout, ": Pushed\n", "v2: digest: sha256:")
	must(t, e2.docker(t, "rmi", pushed, ref))
	must(t, e2.docker(t, "pull", pushed))
	r = must(t, e2.docker(t, "run", "--rm", "--network", "none", pushed, "echo", "berth-tls"))
	if r.stdout != "berth-tls\n" {
		t.Errorf("run of the image pulled from berth's TLS registry: %s", r)
	}
	must(t, e2.docker(t, "rmi", pushed))

	// Without the client certificate the registry refuses the handshake.
	if err := os.Rename(filepath.Join(hostDir, "client.cert"), filepath.Join(hostDir, "client.cert.off")); err != nil {
		t.Fatal(err)
	}
	r = e2.berth(t, "pull", ref)
	if r.code == 0 || !strings.Contains(r.stderr, front) || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("pull without a client certificate: %s", r)
	}
	if e2.berth(t, "image", "inspect", ref).code == 0 {
		t.Error("a refused pull left an image")
	}

	// Without the CA (and so without the directory at all) the server's
	// certificate is not trusted, and loopback does not mean plain HTTP to
	// a server that speaks TLS.
	if err := os.RemoveAll(hostDir); err != nil {
		t.Fatal(err)
	}
	r = e2.berth(t, "pull", ref)
	if r.code == 0 || !strings.Contains(r.stderr, "registry "+front+" speaks HTTPS, not HTTP") {
		t.Errorf("pull with no certificates for %s: %s", front, r)
	}
	if e2.berth(t, "image", "inspect", ref).code == 0 {
		t.Error("a refused pull left an image")
	}
}

// startTLSRegistry runs `berth registry serve` over HTTPS with args and
// waits until /v2/ answers a client that trusts pki's CA.
func startTLSRegistry(t *testing.T, bin, addr string, pki *testPKI, args ...string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	startRegistryProc(t, "TLS registry", addr, answers(hc, "https://"+addr+"/v2/"),
		bin, append([]string{"registry", "serve", "--addr", addr, "--root", t.TempDir(), "--log-level", "error"}, args...)...)
}
