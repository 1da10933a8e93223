package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"berth/internal/registry/server"
)

// registryConfig is the --config file (JSON); flags given on the command
// line override it.
type registryConfig struct {
	Addr string `json:"addr"`
	Root string `json:"root"`
	TLS  struct {
		Cert string `json:"cert"`
		Key  string `json:"key"`
		// ClientCA makes the registry demand client certificates
		// signed by one of these PEM CAs (mutual TLS).
		ClientCA string `json:"clientCA"`
	} `json:"tls"`
	Auth struct {
		server.AuthConfig
		TokenKeyFile string `json:"tokenKeyFile"`
		TokenTTL     string `json:"tokenTTL"`
	} `json:"auth"`
	GC struct {
		Interval string `json:"interval"`
		Grace    string `json:"grace"`
	} `json:"gc"`
	Proxy server.ProxyConfig `json:"proxy"`
}

const registryConfigHelp = `Configuration file (--config, JSON; every field optional, flags override):

  {
    "addr": "127.0.0.1:5000",
    "root": "/var/lib/berth-registry",
    "tls":  {"cert": "server.crt", "key": "server.key",
             "clientCA": "clients-ca.crt"},   demand client certificates
    "auth": {
      "realm": "berth-registry",          basic-auth realm
      "htpasswd": "/etc/berth/htpasswd",  user:bcrypt lines (htpasswd -B)
      "tokenRealm": "https://reg:5000/token",  built-in token endpoint (its path is served)
      "tokenService": "reg:5000",
      "tokenIssuer": "berth-registry",
      "tokenKeyFile": "/etc/berth/token.key",  HMAC key; random per start when absent
      "tokenTTL": "5m",
      "acl": [{"account": "alice", "name": "team/*", "actions": ["pull", "push", "delete"]},
              {"account": "anonymous", "name": "public/*", "actions": ["pull"]}]
    },
    "gc":    {"interval": "24h", "grace": "1h"},
    "proxy": {"remoteurl": "https://upstream:5000", "username": "", "password": ""}
  }

Without an acl every authenticated user may do everything and anonymous users
nothing. Account "*" is any authenticated user; a name ending in * is a prefix.`

// registryCommand is `berth registry`: serve and gc.
func registryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run an OCI distribution registry",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(registryServeCommand(), registryGCCommand())
	return cmd
}

func registryServeCommand() *cobra.Command {
	var c registryConfig
	var configFile, logLevel, gcInterval, gcGrace, tokenTTL string
	var debug bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the OCI distribution API from a filesystem root",
		Long:  "Serve the OCI distribution API from a filesystem root, over HTTP or HTTPS, optionally\nwith basic or token authentication, periodic garbage collection, or as a pull-through cache.",
		// The help template shows examples, not Long: the config file's
		// documentation goes there.
		Example: "  berth registry serve --root /srv/reg --tls-cert server.crt --tls-key server.key \\\n" +
			"      --htpasswd htpasswd --auth-token-realm https://reg:5000/token --auth-token-service reg:5000\n" +
			"  berth registry serve --root /srv/cache --proxy-remote-url https://upstream:5000\n\n" + registryConfigHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				var fc registryConfig
				b, err := os.ReadFile(configFile)
				if err != nil {
					return fmt.Errorf("registry: read config: %w", err)
				}
				if err := json.Unmarshal(b, &fc); err != nil {
					return fmt.Errorf("registry: parse config %s: %w", configFile, err)
				}
				mergeRegistryConfig(cmd.Flags(), &c, fc, map[string]*string{"gc-interval": &gcInterval, "gc-grace": &gcGrace, "auth-token-ttl": &tokenTTL})
			}
			if c.GC.Interval == "" {
				c.GC.Interval = gcInterval
			}
			if c.GC.Grace == "" {
				c.GC.Grace = gcGrace
			}
			if c.Auth.TokenTTL == "" {
				c.Auth.TokenTTL = tokenTTL
			}
			return runRegistry(cmd.Context(), c, logLevel, debug)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configFile, "config", "", "JSON configuration file (see above)")
	fl.StringVar(&c.Addr, "addr", "127.0.0.1:5000", "Address to listen on (host:port)")
	fl.StringVar(&c.Root, "root", "/var/lib/berth-registry", "Directory holding the registry's blobs, manifests and uploads")
	fl.StringVar(&c.TLS.Cert, "tls-cert", "", "Serve HTTPS with this PEM certificate (chain)")
	fl.StringVar(&c.TLS.Key, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringVar(&c.TLS.ClientCA, "tls-client-ca", "", "Demand client certificates signed by a CA in this PEM file")
	fl.StringVar(&c.Auth.Htpasswd, "htpasswd", "", "Require users of this htpasswd file (bcrypt); basic auth unless --auth-token-realm")
	fl.StringVar(&c.Auth.Realm, "auth-realm", "", "Basic-auth realm (default berth-registry)")
	fl.StringVar(&c.Auth.TokenRealm, "auth-token-realm", "", "Absolute URL of the built-in token endpoint (e.g. https://host:5000/token); turns on bearer tokens")
	fl.StringVar(&c.Auth.TokenService, "auth-token-service", "", "Service name in token challenges")
	fl.StringVar(&c.Auth.TokenIssuer, "auth-token-issuer", "", "Issuer name in tokens (default berth-registry)")
	fl.StringVar(&c.Auth.TokenKeyFile, "auth-token-key", "", "File with the HMAC key that signs tokens (default: random per start)")
	fl.StringVar(&tokenTTL, "auth-token-ttl", "5m", "Lifetime of issued tokens")
	fl.StringVar(&gcInterval, "gc-interval", "", "Collect garbage this often while serving (e.g. 24h; default never)")
	fl.StringVar(&gcGrace, "gc-grace", "1h", "Spare unreferenced blobs younger than this in periodic GC")
	fl.StringVar(&c.Proxy.RemoteURL, "proxy-remote-url", "", "Be a pull-through cache of this upstream registry")
	fl.StringVar(&c.Proxy.Username, "proxy-username", "", "Username for the upstream")
	fl.StringVar(&c.Proxy.Password, "proxy-password", "", "Password for the upstream")
	fl.StringVarP(&logLevel, "log-level", "l", "info", "Logging level (debug, info, warn, error)")
	fl.BoolVarP(&debug, "debug", "D", false, "Enable debug logging (every request)")
	return cmd
}

// mergeRegistryConfig fills c from the file's fc wherever the flag was not
// given on the command line.
func mergeRegistryConfig(fl *pflag.FlagSet, c *registryConfig, fc registryConfig, extra map[string]*string) {
	set := func(flag string, dst *string, v string) {
		if v != "" && !fl.Changed(flag) {
			*dst = v
		}
	}
	set("addr", &c.Addr, fc.Addr)
	set("root", &c.Root, fc.Root)
	set("tls-cert", &c.TLS.Cert, fc.TLS.Cert)
	set("tls-key", &c.TLS.Key, fc.TLS.Key)
	set("tls-client-ca", &c.TLS.ClientCA, fc.TLS.ClientCA)
	set("htpasswd", &c.Auth.Htpasswd, fc.Auth.Htpasswd)
	set("auth-realm", &c.Auth.Realm, fc.Auth.Realm)
	set("auth-token-realm", &c.Auth.TokenRealm, fc.Auth.TokenRealm)
	set("auth-token-service", &c.Auth.TokenService, fc.Auth.TokenService)
	set("auth-token-issuer", &c.Auth.TokenIssuer, fc.Auth.TokenIssuer)
	set("auth-token-key", &c.Auth.TokenKeyFile, fc.Auth.TokenKeyFile)
	set("auth-token-ttl", extra["auth-token-ttl"], fc.Auth.TokenTTL)
	set("gc-interval", extra["gc-interval"], fc.GC.Interval)
	set("gc-grace", extra["gc-grace"], fc.GC.Grace)
	set("proxy-remote-url", &c.Proxy.RemoteURL, fc.Proxy.RemoteURL)
	set("proxy-username", &c.Proxy.Username, fc.Proxy.Username)
	set("proxy-password", &c.Proxy.Password, fc.Proxy.Password)
	c.Auth.ACL = fc.Auth.ACL
}

func parseOptDuration(what, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("registry: %s %q: %w", what, v, err)
	}
	return d, nil
}

// runRegistry serves until SIGINT or SIGTERM, then lets requests in flight
// finish for up to 10 s. Upload sessions survive on disk either way.
func runRegistry(ctx context.Context, c registryConfig, logLevel string, debug bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := newLogger(logLevel, debug)
	var opts []server.Option
	if c.Auth.Htpasswd != "" || c.Auth.TokenRealm != "" {
		ac := c.Auth.AuthConfig
		ttl, err := parseOptDuration("token TTL", c.Auth.TokenTTL)
		if err != nil {
			return err
		}
		ac.TokenTTL = ttl
		if c.Auth.TokenKeyFile != "" {
			if ac.TokenKey, err = os.ReadFile(c.Auth.TokenKeyFile); err != nil {
				return fmt.Errorf("registry: read token key: %w", err)
			}
		}
		opts = append(opts, server.WithAuth(ac))
	}
	if c.Proxy.RemoteURL != "" {
		opts = append(opts, server.WithProxy(c.Proxy))
	}
	gcEvery, err := parseOptDuration("gc interval", c.GC.Interval)
	if err != nil {
		return err
	}
	gcGrace, err := parseOptDuration("gc grace", c.GC.Grace)
	if err != nil {
		return err
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("registry: --tls-cert and --tls-key go together")
	}
	var tlsConf *tls.Config
	if c.TLS.ClientCA != "" {
		if c.TLS.Cert == "" {
			return errors.New("registry: --tls-client-ca needs --tls-cert and --tls-key")
		}
		pem, err := os.ReadFile(c.TLS.ClientCA)
		if err != nil {
			return fmt.Errorf("registry: --tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("registry: --tls-client-ca %s: no PEM certificate in it", c.TLS.ClientCA)
		}
		tlsConf = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	}
	srv, err := server.New(c.Root, log, opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("registry: listen on %s: %w", c.Addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsConf}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := srv.ServeControl(ctx); err != nil {
			log.Warn("registry: control socket", "err", err)
		}
	}()
	if gcEvery > 0 {
		go func() {
			t := time.NewTicker(gcEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := srv.GC(ctx, server.GCOptions{Grace: gcGrace}); err != nil {
						log.Warn("registry: periodic gc", "err", err)
					}
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	log.Info("registry listening", "addr", ln.Addr().String(), "root", c.Root, "tls", c.TLS.Cert != "")
	if c.TLS.Cert != "" {
		err = hs.ServeTLS(ln, c.TLS.Cert, c.TLS.Key)
	} else {
		err = hs.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("registry: serve on %s: %w", c.Addr, err)
	}
	return nil
}

func registryGCCommand() *cobra.Command {
	var root string
	var o server.GCOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs no manifest references (safe while the registry serves)",
		Long: "Remove blobs no manifest references. Manifests held by any repository, tagged or\n" +
			"not, are the roots; blobs younger than --grace survive. When a registry serves the\n" +
			"root, the collection runs inside it (through <root>/control.sock), so pushes in\n" +
			"progress are safe.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			rep, err := server.RunGC(ctx, root, o)
			if err != nil {
				return err
			}
			verb := "deleted"
			if rep.DryRun {
				verb = "would delete"
			}
			for _, d := range rep.Deleted {
				fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d blobs marked, %s %d blobs (%d bytes)\n", rep.Marked, verb, len(rep.Deleted), rep.Freed)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&root, "root", "/var/lib/berth-registry", "Registry root directory")
	fl.DurationVar(&o.Grace, "grace", time.Hour, "Spare unreferenced blobs younger than this")
	fl.BoolVar(&o.DryRun, "dry-run", false, "Only report what would be deleted")
	return cmd
}
