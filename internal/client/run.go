package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
)

// ErrWiped and ErrClosed end the loops of a wiped or closed client: Run
// returns them.
var (
	ErrWiped  = errors.New("client: the state was wiped")
	ErrClosed = errors.New("client: closed")
)

// Run connects to the provider and keeps the schedule until ctx is done,
// reconnecting with backoff when the link fails. It returns nil when ctx
// is done.
//
// The backoff doubles while connecting fails and starts again from its
// least once a link was up: on a path that resets connections every few
// seconds, a backoff that only grew reached its 30 s ceiling within a
// minute, and the client spent nearly all its time waiting to reconnect
// (found by e2e/TestUnreliableLinks).
func (c *Client) Run(ctx context.Context) error {
	const least = 100 * time.Millisecond
	backoff := least
	for {
		up, err := c.runLink(ctx)
		if up {
			backoff = least
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrWiped) || errors.Is(err, ErrClosed) {
			return err
		}
		if errors.Is(err, errFormatChanged) {
			c.log.Info("connecting again for the network's new packet format", "after", backoff)
		} else {
			c.linkLost(err, backoff)
		}
		t := c.cfg.Clock.NewTimerAt(c.cfg.Clock.Now().Add(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// linkLost says in Stats and the log that the link failed. It takes c.mu.
func (c *Client) linkLost(err error, backoff time.Duration) {
	msg := err.Error()
	if errors.Is(err, wire.ErrPeerRefused) {
		msg += "; if this goes on, the network may have moved to a later release: upgrade backchannel"
	}
	c.mu.Lock()
	c.stats.Connected, c.stats.LastError = false, msg
	c.notify()
	c.unlock()
	c.log.Warn("link to the provider lost; reconnecting", "err", err, "after", backoff)
}

// linkMade notes the version of a new link to the provider: the first
// post-quantum one is remembered, so that the client never falls back to a
// classical link with this provider (see dialProvider). It takes c.mu.
func (c *Client) linkMade(link Link) error {
	v, ok := link.(interface{ Version() int })
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.unlock()
	c.stats.LinkVersion = v.Version()
	if v.Version() != wire.VersionPostQuantum || c.profile.Network.Provider.PostQuantum {
		return nil
	}
	c.profile.Network.Provider.PostQuantum = true
	if err := c.store.put(profileLabel, c.profile); err != nil {
		c.profile.Network.Provider.PostQuantum = false
		return fmt.Errorf("client: noting that the provider speaks post-quantum links: %w", err)
	}
	return nil
}

// runLink serves one link until it fails or ctx is done; up reports
// whether the link was established (the handshake done and the document
// checked). It takes c.mu.
func (c *Client) runLink(ctx context.Context) (up bool, err error) {
	c.mu.Lock()
	frame := wire.FrameSizeFor(c.geometry().PacketLength())
	c.linkFrame = 0
	c.unlock()
	link, err := c.cfg.Dial(ctx, c.profile.Network, c.linkKey, frame)
	if err != nil {
		return false, err
	}
	defer link.Close()
	c.mu.Lock()
	c.linkFrame = frame
	c.unlock()
	if err := c.linkMade(link); err != nil {
		return false, err
	}
	if err := c.refreshDocument(ctx, link); err != nil {
		return false, err
	}
	c.mu.Lock()
	c.retention = 0 // a new link: tell the provider again
	c.probeContacts()
	c.stats.Connected, c.stats.LastError = true, ""
	c.notify()
	c.unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- c.pollLoop(ctx, link) }()
	go func() { errc <- c.sendLoop(ctx, link) }()
	err = <-errc
	cancel()
	<-errc
	return true, err
}

// sendLoop keeps the sending schedule. It takes c.mu.
func (c *Client) sendLoop(ctx context.Context, link Link) error {
	c.mu.Lock()
	sched := newSchedule(c.timing, c.doc.Parameters, c.cfg.Clock.Now())
	c.unlock()
	for {
		ev, at, ok := sched.pop()
		if !ok {
			<-ctx.Done()
			return nil
		}
		t := c.cfg.Clock.NewTimerAt(at)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		if err := c.fire(ev, link); err != nil {
			return err
		}
	}
}

// fire sends the packet of one schedule event: planned with c.mu held,
// built without it (see plan). A packet that cannot be built is logged and
// its slot passes; a link that fails ends the loop. It takes c.mu.
func (c *Client) fire(ev event, link Link) error {
	c.mu.Lock()
	if err := c.begin(); err != nil {
		c.unlock()
		return err
	}
	b, err := c.plan(ev, c.cfg.Clock.Now())
	c.unlock()
	var packet []byte
	if b != nil && err == nil {
		var changed bool
		packet, changed, err = b()
		if changed {
			c.mu.Lock()
			c.notify()
			c.unlock()
		}
	}
	c.inflight.Done()
	if err != nil {
		c.log.Error("building a packet", "event", ev.String(), "err", err)
		return nil
	}
	if packet == nil {
		return nil
	}
	_, err = link.Send(packet)
	return err
}

// pollLoop fetches the mailbox at the document's fixed interval, and does
// the housekeeping: loops that did not return, document refresh. It takes c.mu.
func (c *Client) pollLoop(ctx context.Context, link Link) error {
	next := c.cfg.Clock.Now()
	for {
		if err := c.followDocuments(ctx, link); err != nil {
			return err
		}
		c.mu.Lock()
		interval := c.doc.Parameters.PollInterval
		c.unlock()
		// A client that was suspended (a laptop asleep) polls once on
		// waking, not once for every interval it missed.
		next = next.Add(interval)
		if now := c.cfg.Clock.Now(); next.Before(now) {
			next = now
		}
		t := c.cfg.Clock.NewTimerAt(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		c.mu.Lock()
		retention, asked := c.desiredRetention(), c.retention
		c.unlock()
		if retention != asked {
			if err := link.SetRetention(retention); err != nil {
				return err
			}
			c.mu.Lock()
			c.retention = retention
			c.unlock()
		}
		if err := c.fetch(ctx, link); err != nil {
			return err
		}
		c.housekeep(c.cfg.Clock.Now())
	}
}

// fetch fetches the mailbox once and, while the provider says more is
// waiting, again at once, up to wire.MaxFetchesPerPoll fetches: a backlog
// drains faster than the schedule alone would (see wire.MaxFetchesPerPoll
// for what that shows an observer). Each batch is stored before the next
// fetch acknowledges it.
func (c *Client) fetch(ctx context.Context, link Link) error {
	for range wire.MaxFetchesPerPoll {
		batch, remaining, err := link.Fetch(ctx)
		if err != nil {
			return err
		}
		if err := c.receive(batch, c.cfg.Clock.Now()); err != nil {
			return err
		}
		if remaining == 0 {
			return nil
		}
	}
	return nil
}

// housekeep counts loops that did not come back in time and forgets
// transmissions whose acks can no longer matter. It takes c.mu.
func (c *Client) housekeep(now time.Time) {
	c.mu.Lock()
	defer c.unlock()
	if c.stopped() != nil {
		return
	}
	timeout := c.loopTimeout()
	for id, sent := range c.loops {
		if now.Sub(sent) > timeout {
			delete(c.loops, id)
			c.stats.LoopsLost++
		}
	}
	c.outbox.forgetTransmissions(now, timeout)
	c.tick()
	c.sweep(now)
}

// loopTimeout is how long a loop packet may take before it counts as
// lost: far beyond its expected round trip.
func (c *Client) loopTimeout() time.Duration {
	if c.doc == nil {
		return 0
	}
	return max(30*time.Second, 20*c.roundTrip())
}
