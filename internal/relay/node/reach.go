package node

import (
	"time"
)

// Reachability of next hops. A link to a next hop that fails is said once
// (info); a next hop the node cannot connect to is marked unreachable
// after unreachableAfter failed attempts in a row — a warning, counted in
// the backchannel_next_hops_unreachable gauge — and said again at most
// every unreachableEvery while it stays so; its return is said once. (A
// dead next hop was an info line every few seconds, 95 lines in nine
// minutes, and no metric.)
const (
	unreachableAfter = 3
	unreachableEvery = time.Minute
)

// reach is one next hop's reachability. Its methods are called from the
// hop Sender's goroutine only.
type reach struct {
	n        *Node
	name     string
	failures int       // failed attempts in a row
	since    time.Time // the first of them
	marked   bool      // counted in the gauge
	lastSaid time.Time
}

// lost is hop.SenderConfig.Lost.
func (r *reach) lost(err error, wait time.Duration, wasUp bool) {
	now := r.n.cfg.Clock.Now()
	if wasUp {
		r.n.log.Info("link to next hop lost; reconnecting", "peer", r.name, "err", err, "backoff", wait)
		r.failures, r.since = 0, now
		return
	}
	if r.failures == 0 {
		r.since = now
	}
	r.failures++
	switch {
	case !r.marked && r.failures >= unreachableAfter:
		r.marked, r.lastSaid = true, now
		r.n.metrics.unreachable.Inc()
		r.n.log.Warn("next hop unreachable; packets for it wait in its queue", "peer", r.name, "attempts", r.failures, "since", r.since.UTC().Format(time.RFC3339), "err", err)
	case r.marked && now.Sub(r.lastSaid) >= unreachableEvery:
		r.lastSaid = now
		r.n.log.Warn("next hop still unreachable", "peer", r.name, "attempts", r.failures, "since", r.since.UTC().Format(time.RFC3339), "err", err)
	}
}

// up is hop.SenderConfig.Up.
func (r *reach) up() {
	if r.marked {
		r.n.metrics.unreachable.Dec()
		r.n.log.Info("next hop reachable again", "peer", r.name, "after", r.n.cfg.Clock.Now().Sub(r.since).Round(time.Second), "attempts", r.failures)
	}
	r.failures, r.marked = 0, false
}

// retired takes a next hop that leaves the document out of the gauge; its
// Sender has stopped.
func (r *reach) retired() {
	if r.marked {
		r.n.metrics.unreachable.Dec()
		r.marked = false
	}
}
