package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultCertsDirs are where per-registry certificates are looked for, as
// docker lays them out: <dir>/<host[:port]>/ca.crt (extra roots, any
// *.crt), client.cert + client.key (a client certificate, any *.cert with
// its *.key).
var DefaultCertsDirs = []string{"/etc/berth/certs.d", "/etc/docker/certs.d"}

// certsDir returns the certs.d directory for host, if there is one.
func (c *Client) certsDir(host string) string {
	dirs := c.opts.CertsDirs
	if dirs == nil {
		dirs = DefaultCertsDirs
	}
	for _, d := range dirs {
		p := filepath.Join(d, host)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
	return ""
}

// insecure tells whether host is spoken to over plain HTTP: loopback
// registries and those the daemon was told to trust, unless they have a
// certs.d directory (then they speak TLS with those certificates).
func (c *Client) insecure(host string) bool {
	if c.certsDir(host) != "" {
		return false
	}
	if isLoopback(host) {
		return true
	}
	for _, h := range c.opts.InsecureRegistries {
		if h == host {
			return true
		}
	}
	return false
}

// clientFor returns the HTTP client for host: the configured one, or one
// whose TLS trusts host's certs.d certificates as well as the system's.
func (c *Client) clientFor(host string) (*http.Client, error) {
	if c.opts.HTTPClient != nil {
		return c.opts.HTTPClient, nil
	}
	dir := c.certsDir(host)
	if dir == "" {
		return c.hc, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.hosts[host]; ok {
		return hc, nil
	}
	cfg, err := tlsConfig(dir)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	hc := &http.Client{Transport: tr}
	c.hosts[host] = hc
	return hc, nil
}

// tlsConfig reads a certs.d directory.
func tlsConfig(dir string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registry certificates %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("registry certificates: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry certificates: no certificate in %s", p)
			}
		case strings.HasSuffix(name, ".cert"):
			key := strings.TrimSuffix(p, ".cert") + ".key"
			cert, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return nil, fmt.Errorf("registry client certificate %s: %w", p, err)
			}
			cfg.Certificates = append(cfg.Certificates, cert)
		}
	}
	return cfg, nil
}
