package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/backchannel/backchannel/internal/client"
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
	attempts := fs.Int("max-attempts", client.DefaultMaxAttempts, "how often a fragment is sent before its message is marked failed")
	checks := fs.Int("max-checks-per-day", client.DefaultMaxChecksPerDay, "how many mutual interest checks a contact may ask you in a day")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: backchannel ui [--dir DIR] [--listen 127.0.0.1:PORT] [--lock-after 5m]")
		return 2
	}
	logger := newLogger(stderr, *logLevel)
	if _, err := os.Stat(*dir); err != nil {
		fmt.Fprintf(stderr, "backchannel: ui: no client state at %s (make one with `backchannel init`)\n", *dir)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The client, once the page has opened it.
	var (
		mu      sync.Mutex
		opened  *client.Client
		running sync.WaitGroup
		runErr  error
		wiped   bool
		ui      *webui.Server
	)
	open := func(pass []byte) (*control.Server, error) {
		c, err := client.Open(client.Config{Dir: *dir, Passphrase: pass, Rand: rand.Reader, MaxAttempts: *attempts, MaxChecksPerDay: *checks, Logger: logger})
		if err != nil {
			return nil, err
		}
		sock, err := control.Listen(socketPath(*dir))
		if err != nil {
			c.Close()
			return nil, err
		}
		ctl := &control.Server{Client: c, Logger: logger, Wiped: func() {
			mu.Lock()
			wiped = true
			mu.Unlock()
			ui.Wiped()
			stop()
		}}
		mu.Lock()
		opened = c
		mu.Unlock()
		running.Add(2)
		go func() {
			defer running.Done()
			if err := ctl.Serve(ctx, sock); err != nil {
				logger.Error("control socket", "err", err)
			}
		}()
		go func() {
			defer running.Done()
			err := c.Run(ctx)
			mu.Lock()
			runErr = err
			mu.Unlock()
			stop()
		}()
		logger.Info("client running", "socket", socketPath(*dir))
		return ctl, nil
	}

	ln, err := webui.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", err)
		return 1
	}
	ui, err = webui.New(webui.Config{Open: open, LockAfter: *lockAfter, Logger: logger}, ln)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "backchannel: ui: %v\n", err)
		return 1
	}
	logger.Info("web interface listening", "address", ln.Addr().String())
	fmt.Fprintf(stdout, "backchannel's interface is at (keep this address to yourself: it lets in whoever has it)\n  %s\n", ui.URL())
	serveErr := ui.Serve(ctx, ln)
	stop()
	running.Wait()
	mu.Lock()
	defer mu.Unlock()
	if opened != nil {
		opened.Close()
	}
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
