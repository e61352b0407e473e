package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/base/listen"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/relay/node"
)

// runNode is `backchannel node run --config FILE` and `backchannel node
// keys --dir DIR`.
func runNode(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return nodeKeys(args[1:], stdout, stderr)
	}
	return runServer("node", args, stderr, func(ctx context.Context, path string, logOut io.Writer) error {
		return serveNode(ctx, path, nil, logOut)
	})
}

// nodeKeys is `backchannel node keys --dir DIR`: a new node's identity and
// link keys (its Sphinx keys are made per epoch when it runs), and the
// identity key the authorities' operators add to their admission lists.
func nodeKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("node keys", stderr)
	dir := fs.String("dir", "", "the new node's directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		return usageOf("node keys", stderr)
	}
	identity, err := node.MakeKeys(*dir, cryptoRand{})
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote identity.key and link.key to %s\nidentity key (for the authorities' admission lists): %s\n", *dir, hex.EncodeToString(identity))
	return 0
}

// runServer is `backchannel KIND run --config FILE` for a server: it parses
// the flags and serves until SIGINT or SIGTERM.
func runServer(kind string, args []string, stderr io.Writer, serve func(ctx context.Context, path string, logOut io.Writer) error) int {
	if len(args) == 0 || args[0] != "run" {
		return usageOf(kind, stderr)
	}
	fs := newFlags(kind+" run", stderr)
	configPath := fs.String("config", "", "the "+kind+"'s configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *configPath == "" {
		return usageOf(kind+" run", stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *configPath, stderr); err != nil {
		fmt.Fprintf(stderr, "backchannel: %s: %v\n", kind, err)
		return 1
	}
	return 0
}

// metricsLimits bound the connections the metrics listener holds: a few
// scrapers and an operator.
var metricsLimits = listen.Limits{Total: 64, PerSource: 8}

// serveNode runs the node of configPath, with its metrics listener, until
// ctx is done.
func serveNode(ctx context.Context, configPath string, listener net.Listener, logOut io.Writer) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	logger := newLogger(logOut, cfg.Node.LogLevel)
	n, cfg, err := node.Load(ctx, configPath, listener, logger, rand.Reader)
	if err != nil {
		return err
	}
	if cfg.Node.Metrics != "" {
		closeMetrics, err := serveMetrics(cfg.Node.Metrics, n.Registry(), func() error { return nil }, cfg.Node.Pprof)
		if err != nil {
			return err
		}
		defer closeMetrics()
	}
	go func() {
		select {
		case <-n.Ready():
			notifyReady(logger)
		case <-ctx.Done():
		}
	}()
	return n.Run(ctx)
}

// serveMetrics serves a server's metrics and health (and, if pprof, Go's
// profiles) on address: /healthz answers 200 "ok" while health is nil, 503
// with the reason otherwise. It returns how to stop serving.
func serveMetrics(address string, registry *prometheus.Registry, health func() error, pprofToo bool) (stop func() error, err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if pprofToo {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := listen.NewHTTPServer(mux, 0)
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	go srv.Serve(listen.Limit(ln, metricsLimits, nil))
	return srv.Close, nil
}

// notifyReady tells the service manager that the process serves (systemd's
// Type=notify; tests listen on the same socket). Without $NOTIFY_SOCKET it
// does nothing.
func notifyReady(log *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("could not notify the service manager of readiness", "err", err)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// runProvider is `backchannel provider add-user`.
func runProvider(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add-user" {
		return usageOf("provider", stderr)
	}
	fs := newFlags("provider add-user", stderr)
	accounts := fs.String("accounts", "", "the provider's account table")
	linkKey := fs.String("link-key", "", "the user's public link key, hex")
	box := fs.String("mailbox", "", "the user's mailbox id, hex (32 bytes)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	key, err1 := hex.DecodeString(*linkKey)
	id, err2 := hex.DecodeString(*box)
	if *accounts == "" || err1 != nil || err2 != nil || len(key) != wire.KeySize || len(id) != mailbox.IDSize {
		fmt.Fprintln(stderr, "backchannel: provider add-user needs --accounts FILE, --link-key (32 bytes hex) and --mailbox (32 bytes hex)")
		return 2
	}
	if err := node.AddAccount(*accounts, [wire.KeySize]byte(key), mailbox.ID(id)); err != nil {
		fmt.Fprintf(stderr, "backchannel: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "account added")
	return 0
}
