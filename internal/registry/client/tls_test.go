package client

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"berth/internal/fixture"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCertsDir runs the registry with TLS and a required client
// certificate; the client trusts it only through the host's certs.d.
func TestCertsDir(t *testing.T) {
	pki := t.TempDir()
	ca := fixture.NewCA(t, "berth test CA")
	srvCert, srvKey := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	os.WriteFile(filepath.Join(pki, "ca.pem"), ca.PEM, 0o644)
	os.WriteFile(filepath.Join(pki, "server.pem"), srvCert, 0o644)
	os.WriteFile(filepath.Join(pki, "server.key"), srvKey, 0o600)
	host := startRegistryWith(t, "  tls:\n    certificate: "+filepath.Join(pki, "server.pem")+"\n    key: "+filepath.Join(pki, "server.key")+
		"\n    clientcas:\n      - "+filepath.Join(pki, "ca.pem")+"\n")

	certs := t.TempDir()
	hostDir := filepath.Join(certs, host)
	os.MkdirAll(hostDir, 0o755)
	os.WriteFile(filepath.Join(hostDir, "ca.crt"), ca.PEM, 0o644)
	cliCert, cliKey := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "berth client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	os.WriteFile(filepath.Join(hostDir, "client.cert"), cliCert, 0o644)
	os.WriteFile(filepath.Join(hostDir, "client.key"), cliKey, 0o600)

	c := New(Options{CertsDirs: []string{certs}})
	ti := busyboxImage(t)
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
