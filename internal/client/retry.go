package client

import (
	"fmt"
	"slices"
	"time"
)

// The attempt policy: when a fragment is sent again, and when its message
// fails.
//
// A message fails only when its deadline passes — its time budget
// (Config.TimeBudget, DefaultTimeBudget: days) from when it was queued —
// or when the user cancels it; never because a relay died. Until then its
// fragments are sent again, each in an ordinary send slot, over a fresh
// route (docs/threat-model.md, "Retries"):
//
//   - the first fastAttempts attempts of a fragment wait the
//     retransmission timeout, doubled per attempt up to 8 times (a dead
//     mix still listed catches some attempts until the authorities leave
//     it out; these get past it soon);
//   - an acknowledgement from the contact gives every fragment to it a
//     new round of fast attempts;
//   - a contact that acknowledged nothing for fastAttempts attempts of a
//     fragment is held — it is offline, or the way to it is broken —
//     and only one of its fragments, the probe, is sent again, waiting
//     twice as long each time up to MaxRetryWait (times the random factor
//     of 1 to 2). Its other fragments, and new messages to it, wait.
//   - an acknowledgement from a held contact resumes it: every fragment to
//     it is due at once, with fastAttempts attempts before it is held
//     again; so does any packet from it — a packet of its ack channel
//     (ackchannel.go), which it sends to every contact when it connects,
//     or a message — since it is online.
//
// So an offline contact's mailbox gets at most about fastAttempts copies
// of each of the 64 fragments in flight (maxInFlight), then a probe about
// once an hour: about 700 packets over the default budget of three days,
// against a provider's default quota of 10,000 (docs/client.md).
const (
	fastAttempts = 10
	// MaxRetryWait caps the wait before a held contact's probe goes again
	// (before its random factor of 1 to 2).
	MaxRetryWait = 30 * time.Minute
)

// retryDelay is how long to wait for the ack of the attempt-th sending
// (of a fragment, or of a hello) before sending again: the retransmission
// timeout (from the measured round trips, as TCP's, never under the
// expected round trip), doubled per attempt — up to 8 times for a fast
// attempt, up to MaxRetryWait for a probe — times a uniform random factor
// from 1 to 2, so that the times of retransmissions do not form a pattern
// an adversary who drops packets could look for.
func (c *Client) retryDelay(attempt int, probe bool) time.Duration {
	rto := max(2*c.roundTrip(), c.srtt+4*c.rttvar)
	doublings := min(max(attempt-1, 0), 3)
	if probe {
		// From the last fast attempt's wait, twice as long per probe.
		doublings += min(max(attempt-fastAttempts, 0), 30)
	}
	wait := rto << doublings
	if probe && (wait > MaxRetryWait || wait <= 0) {
		wait = MaxRetryWait
	}
	return time.Duration(float64(wait) * (1 + c.rng.Float64()))
}

// deadline is when a message fails if it is not acknowledged by then;
// records of earlier releases have none and take the default budget.
func (m *outgoing) deadline(budget time.Duration) time.Time {
	if !m.rec.Deadline.IsZero() {
		return m.rec.Deadline
	}
	return m.rec.Created.Add(budget)
}

// fastLeft reports whether fragment i has fast attempts left in its
// current round (since its contact last resumed).
func (m *outgoing) fastLeft(i int) bool { return m.attempts[i]-m.base[i] < fastAttempts }

// probes finds the held contacts — with a fragment that used its fast
// attempts unacknowledged — and each one's probe: its first such
// fragment, in message order. o.mu is held.
func (o *outbox) probes() map[*contact]fragmentRef {
	held := map[*contact]fragmentRef{}
	for _, m := range o.msgs {
		if !m.pending() {
			continue
		}
		if _, ok := held[m.to]; ok {
			continue
		}
		for i := range m.frags {
			if !m.rec.Acked[i] && !m.fastLeft(i) {
				held[m.to] = fragmentRef{m, i}
				break
			}
		}
	}
	return held
}

// fragmentRef names one fragment of a message.
type fragmentRef struct {
	m *outgoing
	i int
}

// resumeAll makes everything on its way to a contact due at once, with a
// new round of fast attempts: the contact set a new session up with this
// side (its hello came), so it is back, and what was sealed in the session
// it replaced, it cannot read.
func (o *outbox) resumeAll(to *contact, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resume(to, now)
}

// wake resumes a held contact that was heard from (its ack channel, or a
// message): it is online, so what waits for it need not wait for the
// probe's next attempt, up to MaxRetryWait away.
func (o *outbox) wake(to *contact, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, held := o.probes()[to]; held {
		o.resume(to, now)
	}
}

// fresh gives a contact's fragments a new round of fast attempts (they go
// when due): an acknowledgement from it came, so it is not silent — a
// contact is held only after acknowledging nothing for fastAttempts
// attempts of a fragment. o.mu is held.
func (o *outbox) fresh(to *contact) {
	for _, m := range o.msgs {
		if m.to == to && m.pending() {
			copy(m.base, m.attempts)
		}
	}
}

// resume gives a held contact's fragments a new round of fast attempts,
// due at once: an acknowledgement from it came. o.mu is held.
func (o *outbox) resume(to *contact, now time.Time) {
	for _, m := range o.msgs {
		if m.to != to || !m.pending() {
			continue
		}
		for i := range m.frags {
			if !m.rec.Acked[i] {
				m.base[i] = m.attempts[i]
				if m.sent[i] {
					m.due[i] = now
				}
			}
		}
	}
}

// failExpired fails the messages whose deadline passed (budget: the
// default time budget, for records without a deadline); unset says why,
// for a contact whose session was never set up. It returns those it
// failed.
func (o *outbox) failExpired(now time.Time, budget time.Duration, unset map[*contact]string) []*outgoing {
	o.mu.Lock()
	defer o.mu.Unlock()
	var failed []*outgoing
	for _, m := range o.msgs {
		if !m.pending() || now.Before(m.deadline(budget)) {
			continue
		}
		reason := unset[m.to]
		if reason == "" {
			reason = m.unacknowledged()
		}
		m.settle(Failed, fmt.Sprintf("not acknowledged within %v: %s", m.deadline(budget).Sub(m.rec.Created).Round(time.Second), reason), now)
		o.saveSettled(m)
		failed = append(failed, m)
	}
	return failed
}

// unacknowledged says which fragments were not acknowledged, and how
// often they were sent.
func (m *outgoing) unacknowledged() string {
	left, most := 0, 0
	for i := range m.frags {
		if !m.rec.Acked[i] {
			left++
			most = max(most, m.attempts[i])
		}
	}
	if most == 0 {
		return fmt.Sprintf("%d of %d fragments never sent (the contact acknowledged nothing)", left, len(m.frags))
	}
	return fmt.Sprintf("%d of %d fragments unacknowledged after up to %d attempts (this run); the contact may be offline, or the way to it broken", left, len(m.frags), most)
}

// cancel settles a message on its way as failed, cancelled by the user;
// if it is not on its way, it says what it is.
func (o *outbox) cancel(m *outgoing, now time.Time) (Status, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !m.pending() {
		return m.rec.Status, false
	}
	m.settle(Failed, "cancelled by you", now)
	o.saveSettled(m)
	return Failed, true
}

// retryNow makes a message's unacknowledged fragments due at once, with a
// new round of fast attempts; if it is not on its way, it says what it is.
func (o *outbox) retryNow(m *outgoing, now time.Time) (Status, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !m.pending() {
		return m.rec.Status, false
	}
	for i := range m.frags {
		if !m.rec.Acked[i] {
			m.base[i], m.due[i] = m.attempts[i], now
		}
	}
	return m.rec.Status, true
}

// urgentWaiting returns the contacts that have an urgent message on its
// way (usually none: then a send slot locks no contact for it).
func (o *outbox) urgentWaiting() []*contact {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*contact
	for _, m := range o.msgs {
		if m.rec.Urgent && m.pending() && !slices.Contains(out, m.to) {
			out = append(out, m.to)
		}
	}
	return out
}

// byIDLocked finds an outgoing message by its ID, taking o.mu.
func (o *outbox) byIDLocked(id [16]byte) *outgoing {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byID[id]
}
