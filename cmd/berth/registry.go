package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"berth/internal/registry/server"
)

type registryServeFlags struct {
	addr, root, logLevel string
	debug                bool
}

// registryCommand is `berth registry`, whose one verb so far is serve.
func registryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run an OCI distribution registry",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(registryServeCommand())
	return cmd
}

func registryServeCommand() *cobra.Command {
	var f registryServeFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the OCI distribution API (plain HTTP) from a filesystem root",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRegistry(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:5000", "Address to listen on (host:port)")
	fl.StringVar(&f.root, "root", "/var/lib/berth-registry", "Directory holding the registry's blobs, manifests and uploads")
	fl.StringVarP(&f.logLevel, "log-level", "l", "info", "Logging level (debug, info, warn, error)")
	fl.BoolVarP(&f.debug, "debug", "D", false, "Enable debug logging (every request)")
	return cmd
}

// runRegistry serves until SIGINT or SIGTERM, then lets requests in flight
// finish for up to 10 s. Upload sessions survive on disk either way.
func runRegistry(ctx context.Context, f registryServeFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := newLogger(f.logLevel, f.debug)
	srv, err := server.New(f.root, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("registry: listen on %s: %w", f.addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	log.Info("registry listening", "addr", ln.Addr().String(), "root", f.root)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("registry: serve on %s: %w", f.addr, err)
	}
	return nil
}
