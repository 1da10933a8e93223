package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"berth/internal/api"
	"berth/internal/daemon"
	"berth/internal/keeper"
	regclient "berth/internal/registry/client"
	"berth/internal/runtime"
)

// Version of berth, reported by /version.
const Version = "0.1.0"

// API versions the daemon speaks (CONTRACT.md §2: 1.44..1.50 keeps the
// docker CLI off its legacy paths).
const (
	apiVersion    = "1.47"
	minAPIVersion = "1.24"
)

type daemonFlags struct {
	host, dataRoot, execRoot, configFile, logLevel string
	bridgeName, bridgeSubnet                       string
	buildCacheMax                                  string
	certsDir                                       string
	debug                                          bool
	// From the config file only: mirrors by registry domain, insecure
	// registries.
	mirrors  map[string][]string
	insecure []string
}

func daemonCommand() *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth engine (Docker Engine API on a unix socket)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.host, "host", "H", "unix:///run/berth/berth.sock", "Daemon socket to listen on")
	fl.StringVar(&f.dataRoot, "data-root", "/var/lib/berth", "Root directory of persistent state")
	fl.StringVar(&f.execRoot, "exec-root", "/run/berth", "Root directory of runtime state")
	fl.StringVar(&f.configFile, "config-file", "/etc/berth/daemon.json", "Daemon configuration file")
	fl.StringVarP(&f.logLevel, "log-level", "l", "info", "Logging level (debug, info, warn, error)")
	fl.BoolVarP(&f.debug, "debug", "D", false, "Enable debug logging")
	fl.StringVar(&f.bridgeName, "bridge-name", "berth0", "Device name of the default bridge network")
	fl.StringVar(&f.bridgeSubnet, "bridge-subnet", "10.209.0.0/24", "IPv4 subnet of the default bridge network")
	fl.StringVar(&f.certsDir, "registry-certs-dir", "", "Directory of per-registry TLS certificates (<dir>/<host:port>/ca.crt, client.cert, client.key); default /etc/berth/certs.d then /etc/docker/certs.d")
	fl.StringVar(&f.buildCacheMax, "build-cache-max", "", "Bound of the build cache (e.g. 5GB); default 10% of the data root's disk, at most 10GB")
	return cmd
}

// loadConfigFile applies daemon.json keys that were not given as flags.
func loadConfigFile(cmd *cobra.Command, f *daemonFlags) error {
	b, err := os.ReadFile(f.configFile)
	if os.IsNotExist(err) && !cmd.Flags().Changed("config-file") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var cfg struct {
		Hosts    []string `json:"hosts"`
		DataRoot string   `json:"data-root"`
		ExecRoot string   `json:"exec-root"`
		LogLevel string   `json:"log-level"`
		Debug    bool     `json:"debug"`
		// docker's: mirrors of Docker Hub only.
		RegistryMirrors []string `json:"registry-mirrors"`
		// berth's: mirrors of any registry, by its domain.
		RegistryMirrorsByHost map[string][]string `json:"registry-mirrors-by-host"`
		InsecureRegistries    []string            `json:"insecure-registries"`
		// berth's: where per-registry certificates are looked for.
		RegistryCertsDir string `json:"registry-certs-dir"`
		// docker's key for the build cache bound.
		Builder struct {
			GC struct {
				DefaultKeepStorage string `json:"defaultKeepStorage"`
			} `json:"gc"`
		} `json:"builder"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("config file %s: %w", f.configFile, err)
	}
	f.mirrors = map[string][]string{}
	for host, ms := range cfg.RegistryMirrorsByHost {
		f.mirrors[host] = append(f.mirrors[host], ms...)
	}
	f.mirrors["docker.io"] = append(f.mirrors["docker.io"], cfg.RegistryMirrors...)
	if _, err := regclient.NewChecked(regclient.Options{Mirrors: f.mirrors}); err != nil {
		return fmt.Errorf("config file %s: %w", f.configFile, err)
	}
	f.insecure = cfg.InsecureRegistries
	set := func(flag string, dst *string, v string) {
		if v != "" && !cmd.Flags().Changed(flag) {
			*dst = v
		}
	}
	if len(cfg.Hosts) > 0 {
		set("host", &f.host, cfg.Hosts[0])
	}
	set("data-root", &f.dataRoot, cfg.DataRoot)
	set("exec-root", &f.execRoot, cfg.ExecRoot)
	set("log-level", &f.logLevel, cfg.LogLevel)
	set("build-cache-max", &f.buildCacheMax, cfg.Builder.GC.DefaultKeepStorage)
	set("registry-certs-dir", &f.certsDir, cfg.RegistryCertsDir)
	f.debug = f.debug || cfg.Debug
	return nil
}

func newLogger(level string, debug bool) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	if debug {
		l = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func runDaemon(cmd *cobra.Command, f daemonFlags) error {
	if err := loadConfigFile(cmd, &f); err != nil {
		return err
	}
	log := newLogger(f.logLevel, f.debug)
	slog.SetDefault(log)
	sock, ok := strings.CutPrefix(f.host, "unix://")
	if !ok {
		return fmt.Errorf("unsupported host %q: only unix:// sockets are served", f.host)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	subnet, err := netip.ParsePrefix(f.bridgeSubnet)
	if err != nil {
		return fmt.Errorf("--bridge-subnet: %w", err)
	}
	var cacheMax int64
	if f.buildCacheMax != "" {
		if cacheMax, err = units.FromHumanSize(f.buildCacheMax); err != nil || cacheMax <= 0 {
			return fmt.Errorf("--build-cache-max %q: want a positive size such as 5GB", f.buildCacheMax)
		}
	}
	d, err := daemon.New(daemon.Config{
		DataRoot: f.dataRoot, ExecRoot: f.execRoot, Exe: exe, Logger: log,
		BridgeName: f.bridgeName, BridgeSubnet: subnet,
		RegistryMirrors: f.mirrors, InsecureRegistries: f.insecure, RegistryCertsDirs: certsDirs(f.certsDir),
		BuildCacheMax: cacheMax,
		Version:       Version, APIVersion: apiVersion, MinAPIVersion: minAPIVersion,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return err
	}
	if conn, err := net.Dial("unix", sock); err == nil {
		conn.Close()
		return fmt.Errorf("another daemon is serving %s", sock)
	}
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		return err
	}
	pidfile := filepath.Join(f.execRoot, "berth.pid")
	os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidfile)
	srv := api.New(d, api.Options{Version: apiVersion, MinVersion: minAPIVersion, Logger: log, ServerName: "berth/" + Version + " (linux)"})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("berth daemon serving", "socket", sock, "data-root", f.dataRoot, "exec-root", f.execRoot)
	select {
	case s := <-sigs:
		log.Info("shutting down; containers keep running", "signal", s.String())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Remove(sock)
		return nil
	case err := <-errc:
		return err
	}
}

func keeperCommand() *cobra.Command {
	var execRoot string
	var idle time.Duration
	cmd := &cobra.Command{
		Use:    "keeper",
		Short:  "Hold running containers (started by the daemon)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger("info", false)
			rt, err := runtime.New(filepath.Join(execRoot, "runtime"))
			if err != nil {
				return err
			}
			sock := filepath.Join(execRoot, "keeper.sock")
			if conn, err := net.Dial("unix", sock); err == nil {
				conn.Close()
				return fmt.Errorf("a keeper already serves %s", sock)
			}
			os.Remove(sock)
			l, err := net.Listen("unix", sock)
			if err != nil {
				return err
			}
			os.Chmod(sock, 0o600)
			pidfile := filepath.Join(execRoot, "keeper.pid")
			os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
			defer os.Remove(pidfile)
			signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
			err = keeper.NewServer(rt, log).Serve(l, idle)
			os.Remove(sock)
			return err
		},
	}
	cmd.Flags().StringVar(&execRoot, "exec-root", "/run/berth", "Root directory of runtime state")
	cmd.Flags().DurationVar(&idle, "idle-exit", 30*time.Second, "Exit after this long without containers or daemon (0: never)")
	return cmd
}

// certsDirs is the registry client's certificate directories for
// --registry-certs-dir: nil (the defaults) when it is not set.
func certsDirs(dir string) []string {
	if dir == "" {
		return nil
	}
	return []string{dir}
}
