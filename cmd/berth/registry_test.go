package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestRegistryServeTLSAndAuth runs `berth registry serve`'s wiring with a
// config file: HTTPS with a certificate from a test CA, htpasswd basic
// auth, and a GC timer; then stops it through its context.
func TestRegistryServeTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t)
	write := func(name string, b []byte) string { return writeTestFile(t, dir, name, b) }
	srvCert, srvKey := pki.issue(t, &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cert, keyFile := write("server.crt", srvCert), write("server.key", srvKey)
	ca := pki.ca
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := write("htpasswd", []byte("u:"+string(h)+"\n"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var c registryConfig
	c.Addr, c.Root = addr, filepath.Join(dir, "root")
	c.TLS.Cert, c.TLS.Key = cert, keyFile
	c.Auth.Htpasswd = htpasswd
	c.GC.Interval, c.GC.Grace = "1h", "1h"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRegistry(ctx, c, "error", false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runRegistry: %v", err)
		}
	})

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	url := "https://" + addr + "/v2/"
	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("u", "pw")
		if resp, err = client.Do(req); err == nil || time.Now().After(deadline) {
			break
		}
	}
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
	pki := newTestPKI(t)
	write := func(name string, b []byte) string { return writeTestFile(t, dir, name, b) }
	srvCert, srvKey := pki.issue(t, &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cliCert, cliKey := pki.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	ca, caDER := pki.ca, pki.ca.Raw

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var c registryConfig
	c.Addr, c.Root = addr, filepath.Join(dir, "root")
	c.TLS.Cert, c.TLS.Key = write("server.crt", srvCert), write("server.key", srvKey)
	c.TLS.ClientCA = write("ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRegistry(ctx, c, "error", false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runRegistry: %v", err)
		}
	})

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	without := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + addr + "/v2/"
	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = withCert.Get(url); err == nil || time.Now().After(deadline) {
			break
		}
	}
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

// testPKI is a throw-away CA for TLS tests.
type testPKI struct {
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca, key: key, serial: 1}
}

// issue returns a PEM certificate and key for tmpl, signed by the CA.
func (p *testPKI) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeTestFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
