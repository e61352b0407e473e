package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/features"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/ui/control"
	"github.com/backchannel/backchannel/internal/ui/webui"
)

// runUI is `backchannel ui`: the client daemon with its web interface. It
// starts locked, prints the interface's address (with its secret token),
// and opens the state when the passphrase is typed into the page; from
// then on it is the daemon of `client run`, control socket included.
func runUI(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("ui", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "where the interface listens: a loopback address and port (port 0 picks a free one)")
	lockAfter := fs.Duration("lock-after", webui.DefaultLockAfter, "lock the interface after this long without use")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	budget := fs.Duration("time-budget", client.DefaultTimeBudget, "how long a message may take to be acknowledged before it is marked failed (it is sent again until then)")
	checks := fs.Int("max-checks-per-day", interest.DefaultMaxPerDay, "how many mutual interest checks a contact may ask you in a day")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		return usageOf("ui", stderr)
	}
	logger := newLogger(stderr, *logLevel)
	if !client.HasState(*dir) {
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", noState(*dir))
		return 1
	}
	// Before printing an address whose page could only fail to unlock.
	if err := client.CheckFree(*dir); err != nil {
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d := &uiDaemon{dir: *dir, cfg: client.Config{Dir: *dir, Rand: rand.Reader, TimeBudget: *budget, Logger: logger}, features: features.Config{MaxChecksPerDay: *checks}, ctx: ctx, stop: stop, logger: logger}
	ln, err := webui.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", err)
		return 1
	}
	ui, err := webui.New(webui.Config{Open: d.open, LockAfter: *lockAfter, Logger: logger}, ln)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", err)
		return 1
	}
	logger.Info("web interface listening", "address", ln.Addr().String())
	fmt.Fprintf(stdout, "backchannel's interface is at (keep this address to yourself: it lets in whoever has it)\n  %s\n", ui.URL())
	d.mu.Lock()
	d.ui = ui
	d.mu.Unlock()
	serveErr := ui.Serve(ctx, ln)
	stop()
	wiped, runErr := d.close()
	switch {
	case serveErr != nil:
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", serveErr)
		return 1
	case wiped || errors.Is(runErr, client.ErrWiped):
		fmt.Fprintln(stdout, "the state was wiped; the client stops")
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", runErr)
		return 1
	}
	return 0
}

// uiDaemon is the client behind the web interface, once the page has
// opened it with the passphrase.
type uiDaemon struct {
	dir      string
	cfg      client.Config
	features features.Config
	ctx      context.Context
	stop     context.CancelFunc
	logger   *slog.Logger

	running sync.WaitGroup
	mu      sync.Mutex
	ui      *webui.Server  // guarded by mu
	opened  *client.Client // guarded by mu
	runErr  error          // guarded by mu
	wiped   bool           // guarded by mu
}

// open opens the client with the passphrase and starts its daemon: the
// schedule and the control socket.
func (d *uiDaemon) open(pass []byte) (*control.Server, error) {
	cfg := d.cfg
	cfg.Passphrase = pass
	c, err := client.Open(cfg)
	if err != nil {
		return nil, err
	}
	feats, err := features.Register(c, d.features)
	if err != nil {
		c.Close()
		return nil, err
	}
	sock, err := control.Listen(socketPath(d.dir))
	if err != nil {
		c.Close()
		return nil, err
	}
	ctl := &control.Server{Client: c, Features: feats, Logger: d.logger, Wiped: func() {
		d.mu.Lock()
		d.wiped = true
		ui := d.ui
		d.mu.Unlock()
		ui.Wiped()
		d.stop()
	}}
	d.mu.Lock()
	d.opened = c
	d.mu.Unlock()
	d.running.Add(2)
	go func() {
		defer d.running.Done()
		if err := ctl.Serve(d.ctx, sock); err != nil {
			d.logger.Error("control socket", "err", err)
		}
	}()
	go func() {
		defer d.running.Done()
		err := c.Run(d.ctx)
		d.mu.Lock()
		d.runErr = err
		d.mu.Unlock()
		d.stop()
	}()
	d.logger.Info("client running", "socket", socketPath(d.dir))
	return ctl, nil
}

// close waits for the daemon's goroutines and closes the client; it says
// whether the state was wiped and how the schedule ended.
func (d *uiDaemon) close() (wiped bool, runErr error) {
	d.running.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened != nil {
		d.opened.Close()
	}
	return d.wiped, d.runErr
}
