package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"berth/internal/fixture"

	"golang.org/x/crypto/bcrypt"
)

// TestRegistryServeTLSAndAuth runs `berth registry serve`'s wiring with a
// config file: HTTPS with a certificate from a test CA, htpasswd basic
// auth, and a GC timer; then stops it through its context.
func TestRegistryServeTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	pki := fixture.NewCA(t, "test CA")
	write := func(name string, b []byte) string { return writeTestFile(t, dir, name, b) }
	srvCert, srvKey := pki.Issue(t, &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cert, keyFile := write("server.crt", srvCert), write("server.key", srvKey)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := write("htpasswd", []byte("u:"+string(h)+"\n"))

	var c registryConfig
	c.TLS.Cert, c.TLS.Key = cert, keyFile
	c.Auth.Htpasswd = htpasswd
	c.GC.Interval, c.GC.Grace = "1h", "1h"
	addr := serveTestRegistry(t, dir, c)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}, Timeout: 5 * time.Second}
	url := "https://" + addr + "/v2/"
	resp, err := untilAnswered(func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("u", "pw")
		return client.Do(req)
	})
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with credentials: %d", url, resp.StatusCode)
	}
	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="berth-registry"` {
		t.Fatalf("GET %s without credentials: %d %q", url, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestRegistryServeClientCA: with --tls-client-ca the registry completes
// the TLS handshake only for clients whose certificate that CA signed.
func TestRegistryServeClientCA(t *testing.T) {
	dir := t.TempDir()
	pki := fixture.NewCA(t, "test CA")
	write := func(name string, b []byte) string { return writeTestFile(t, dir, name, b) }
	srvCert, srvKey := pki.Issue(t, &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cliCert, cliKey := pki.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	var c registryConfig
	c.TLS.Cert, c.TLS.Key = write("server.crt", srvCert), write("server.key", srvKey)
	c.TLS.ClientCA = write("ca.crt", pki.PEM)
	addr := serveTestRegistry(t, dir, c)

	pool := pki.Pool()
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	without := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + addr + "/v2/"
	resp, err := untilAnswered(func() (*http.Response, error) { return withCert.Get(url) })
	if err != nil {
		t.Fatalf("GET %s with a client certificate: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with a client certificate: %d", url, resp.StatusCode)
	}
	if resp, err := without.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s without a client certificate answered %d; want a refused handshake", url, resp.StatusCode)
	}

	// A client CA without a server certificate is a configuration error.
	bad := c
	bad.TLS.Cert, bad.TLS.Key = "", ""
	if err := runRegistry(context.Background(), bad, "error", false); err == nil {
		t.Error("--tls-client-ca without --tls-cert was accepted")
	}
}

// serveTestRegistry runs `berth registry serve`'s wiring with c on a free
// loopback port, with its root under dir, until the test ends, then stops
// it through its context. It returns host:port.
func serveTestRegistry(t *testing.T, dir string, c registryConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c.Addr, c.Root = addr, filepath.Join(dir, "root")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRegistry(ctx, c, "error", false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runRegistry: %v", err)
		}
	})
	return addr
}

// untilAnswered calls get every 20 ms until it gets a response or 5 s
// have passed, and returns its last result.
func untilAnswered(get func() (*http.Response, error)) (*http.Response, error) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := get(); err == nil || time.Now().After(deadline) {
			return resp, err
		}
	}
}

func writeTestFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
