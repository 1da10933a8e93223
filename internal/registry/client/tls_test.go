package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeCert makes a key pair signed by parent (self-signed when nil) and
// writes it PEM-encoded to certPath and keyPath.
func writeCert(t *testing.T, certPath, keyPath string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if keyPath != "" {
		os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	}
	return cert, key
}

// TestCertsDir runs the registry with TLS and a required client
// certificate; the client trusts it only through the host's certs.d.
func TestCertsDir(t *testing.T) {
	pki := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, filepath.Join(pki, "ca.pem"), "", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, filepath.Join(pki, "server.pem"), filepath.Join(pki, "server.key"), &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)
	host := startRegistryWith(t, "  tls:\n    certificate: "+filepath.Join(pki, "server.pem")+"\n    key: "+filepath.Join(pki, "server.key")+
		"\n    clientcas:\n      - "+filepath.Join(pki, "ca.pem")+"\n")

	certs := t.TempDir()
	hostDir := filepath.Join(certs, host)
	os.MkdirAll(hostDir, 0o755)
	caPEM, _ := os.ReadFile(filepath.Join(pki, "ca.pem"))
	os.WriteFile(filepath.Join(hostDir, "ca.crt"), caPEM, 0o644)
	writeCert(t, filepath.Join(hostDir, "client.cert"), filepath.Join(hostDir, "client.key"), &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "berth client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)

	c := New(Options{CertsDirs: []string{certs}})
	cfg, layer := busyboxLayer(t)
	ti := makeImage(t, cfg, hostArch(), layer)
	push(t, c, host+"/tls:v1", ti)
	named, _ := ParseReference(host + "/tls:v1")
	img, err := c.ResolveImage(context.Background(), named, ocispec.Platform{})
	if err != nil || img.ManifestDigest != ti.desc.Digest {
		t.Fatalf("over TLS with certs.d: %v", err)
	}
	// Without the certs.d directory the loopback registry is tried over
	// plain HTTP, which a TLS server refuses.
	if _, err := New(Options{CertsDirs: []string{t.TempDir()}}).ResolveImage(context.Background(), named, ocispec.Platform{}); err == nil {
		t.Fatal("plain HTTP to a TLS registry succeeded")
	}
	// With the CA but without the client certificate the handshake fails.
	os.Remove(filepath.Join(hostDir, "client.cert"))
	// With TLS 1.3 the server's refusal can surface after the handshake as
	// a reset connection, which is retried like any network error: only the
	// outcome is checked here, not the number of attempts.
	_, err = New(Options{CertsDirs: []string{certs}, Backoff: time.Millisecond}).ResolveImage(context.Background(), named, ocispec.Platform{})
	if err == nil {
		t.Fatal("TLS without the required client certificate succeeded")
	}
}
