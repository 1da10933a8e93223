package server

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"berth/internal/fixture"

	digest "github.com/opencontainers/go-digest"
)

func digestOf(b []byte) string { return digest.FromBytes(b).String() }

// testPKI makes a CA and a server certificate for 127.0.0.1 signed by it,
// written as PEM files the way `berth registry serve --tls-cert/--tls-key`
// reads them.
func testPKI(t *testing.T) (caPool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	ca := fixture.NewCA(t, "berth test CA")
	cert, key := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(certFile, cert, 0o600)
	os.WriteFile(keyFile, key, 0o600)
	return ca.Pool(), certFile, keyFile
}

func TestTLSWithBasicAuth(t *testing.T) {
	pool, certFile, keyFile := testPKI(t)
	htpasswd := writeHtpasswd(t, map[string]string{"alice": "secret"})
	s, err := New(t.TempDir(), nil, WithAuth(AuthConfig{Htpasswd: htpasswd}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, certFile, keyFile)
	t.Cleanup(func() { hs.Close() })
	url := "https://" + ln.Addr().String() + "/v2/"

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("alice", "secret")
	resp, err := trusting.Do(req)
	if err != nil {
		t.Fatalf("GET %s with the CA: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET %s: status %d, tls %v", url, resp.StatusCode, resp.TLS != nil)
	}
	// Without the CA the certificate is not trusted.
	if resp, err := (&http.Client{Transport: &http.Transport{}}).Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the test CA trusted the server")
	}
	// Plain HTTP to the TLS port fails.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served")
		}
	}
}
