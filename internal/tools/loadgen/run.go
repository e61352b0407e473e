package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Config is one load run.
type Config struct {
	Document *directory.Document
	Accounts []Account
	// Rate is each client's loop packets per second (Poisson).
	Rate float64
	// Poll is how often each client fetches its mailbox.
	Poll time.Duration
	// Duration is how long clients send; Drain how long they go on
	// fetching afterwards, for the packets still on their way.
	Duration, Drain time.Duration
	// Seed makes the clients' schedules and routes reproducible.
	Seed uint64
	// Connected, if set, is called once every client's link is up, before
	// any packet is sent (to measure the providers' memory then).
	Connected func()
	// Progress, if set, is called every second with the counts so far.
	Progress func(elapsed time.Duration, s Snapshot)
}

// dialers bounds the links being opened at once.
const dialers = 64

// Run connects every client, runs the load and returns what was counted.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	format, err := sphinx.New(cfg.Document.Parameters.Geometry)
	if err != nil {
		return nil, err
	}
	stats := newStats()
	clients := make([]*client, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		var p *directory.Node
		for _, n := range cfg.Document.Providers() {
			if n.Name == a.Provider {
				p = n
			}
		}
		if p == nil {
			return nil, fmt.Errorf("loadgen: no provider %q in the document", a.Provider)
		}
		clients[i] = &client{index: uint32(i), account: a, provider: p, doc: cfg.Document, format: format,
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), stats: stats}
	}
	defer func() {
		for _, c := range clients {
			if c.link != nil {
				c.link.Close()
			}
		}
	}()
	if err := dialAll(ctx, clients); err != nil {
		return nil, err
	}
	if cfg.Connected != nil {
		cfg.Connected()
	}
	start := time.Now()
	stopSending, stopFetching := start.Add(cfg.Duration), start.Add(cfg.Duration+cfg.Drain)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		if err != nil {
			select {
			case errc <- err:
			default:
			}
			cancel()
		}
	}
	for _, c := range clients {
		wg.Add(2)
		go func() { defer wg.Done(); fail(c.send(ctx, cfg.Rate, stopSending)) }()
		go func() { defer wg.Done(); fail(c.poll(ctx, cfg.Poll, stopFetching)) }()
	}
	if cfg.Progress != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					cfg.Progress(time.Since(start), stats.Snapshot())
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return stats, err
	default:
	}
	return stats, ctx.Err()
}

// dialAll opens every client's link, a bounded number at a time.
func dialAll(ctx context.Context, clients []*client) error {
	sem := make(chan struct{}, dialers)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.dial(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("loadgen: %d of %d links failed: %w", len(errs), len(clients), errors.Join(errs[:min(len(errs), 3)]...))
	}
	return nil
}
