package client

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Limits of what the client holds in memory.
const (
	// maxQueuedAcks bounds the acks waiting for send slots; beyond it new
	// fragments go unacknowledged and their senders retransmit.
	maxQueuedAcks = 4096
	// maxInFlight bounds the fragments sent and not yet acknowledged or
	// due again, so that a long file does not fill the network with
	// retransmissions of fragments whose acks are merely slow.
	maxInFlight = 64
)

// envelopeSessionRoom is the room for a session message in a packet of
// geometry g, next to the ack's SURB and an Initial of initialLength bytes.
func envelopeSessionRoom(g sphinx.Geometry, initialLength int) int {
	return envelope.SessionRoom(g.UserPayloadLength, g.SURBLength(), initialLength)
}

// nextPacket builds the packet for a send event at now; c.mu is held. It
// returns nil if the client cannot send (no network document, or one
// that has ended).
func (c *Client) nextPacket(ev event, now time.Time) ([]byte, error) {
	if !c.documentUsable(now) {
		return nil, nil
	}
	switch ev {
	case evLoop:
		c.stats.LoopsSent++
		return c.loopPacket(now)
	case evDrop:
		c.stats.DropsSent++
		return c.dropPacket()
	}
	c.stats.SendSlots++
	if len(c.acks) > 0 {
		p := c.acks[0]
		c.acks = c.acks[1:]
		c.stats.AcksSent++
		return p, nil
	}
	if p, err := c.nextSessionPacket(now); p != nil || err != nil {
		return p, err
	}
	c.stats.DropsSent++
	return c.dropPacket()
}

// nextSessionPacket returns the next hello or fragment that is due, or nil.
func (c *Client) nextSessionPacket(now time.Time) ([]byte, error) {
	c.failExhausted(now)
	// Hellos first: nothing else moves for a contact until its session
	// is confirmed.
	for _, m := range c.out {
		ct := m.to
		if !m.pending() || ct.usable() {
			continue
		}
		if ct.sess == nil {
			if err := c.startSession(ct, now); err != nil {
				return nil, err
			}
		}
		if ct.helloDue.After(now) {
			continue
		}
		ct.helloAttempts++
		ct.helloDue = now.Add(c.retryDelay(ct.helloAttempts))
		c.stats.HellosSent++
		return c.sessionPacket(ct, []byte{recordHello, ct.rec.Session.Reason}, ct.rec.Session.Initial, nil, 0, now)
	}
	inFlight := 0
	for _, t := range c.pending {
		if t.msg != nil && !t.msg.rec.Acked[t.index] && t.msg.due[t.index].After(now) {
			inFlight++
		}
	}
	for _, m := range c.out {
		if !m.pending() || !m.to.usable() {
			continue
		}
		for i := range m.frags {
			if m.rec.Acked[i] || m.due[i].After(now) {
				continue
			}
			if !m.sent[i] && inFlight >= maxInFlight {
				return nil, nil
			}
			m.attempts[i]++
			if m.sent[i] {
				c.stats.Retransmissions++
			}
			m.sent[i] = true
			m.due[i] = now.Add(c.retryDelay(m.attempts[i]))
			c.stats.FragmentsSent++
			rec := append([]byte{recordFragment}, m.frags[i]...)
			p, err := c.sessionPacket(m.to, rec, nil, m, i, now)
			if err == nil && m.rec.Status == Queued && allTrue(m.sent) {
				m.rec.Status = Sent
				err = outRecords.put(c.store, m.rec.ID, m.rec)
				c.notify()
			}
			return p, err
		}
	}
	return nil, nil
}

// pending reports whether the message still has fragments to deliver.
func (m *outgoing) pending() bool { return m.rec.Status == Queued || m.rec.Status == Sent }

func allTrue(v []bool) bool {
	for _, b := range v {
		if !b {
			return false
		}
	}
	return true
}

// failExhausted marks failed the messages with a fragment (or a hello) that
// used every attempt and whose last wait ran out.
func (c *Client) failExhausted(now time.Time) {
	for _, m := range c.out {
		if !m.pending() {
			continue
		}
		reason := ""
		if !m.to.usable() && m.to.helloAttempts >= c.cfg.MaxAttempts && !m.to.helloDue.After(now) {
			reason = fmt.Sprintf("the session with %s could not be set up: no answer to %d attempts", m.to.rec.Name, m.to.helloAttempts)
		}
		for i := range m.frags {
			if !m.rec.Acked[i] && m.attempts[i] >= c.cfg.MaxAttempts && !m.due[i].After(now) {
				reason = fmt.Sprintf("fragment %d of %d was not acknowledged after %d attempts", i+1, len(m.frags), m.attempts[i])
				break
			}
		}
		if reason == "" {
			continue
		}
		m.rec.Status, m.rec.Reason = Failed, reason
		c.startExpiry(m, now)
		// As for a delivered message: the record first, then the content.
		if err := outRecords.put(c.store, m.rec.ID, m.rec); err != nil {
			c.log.Error("saving a failed message", "err", err)
		} else if err := bodies.delete(c.store, m.rec.ID); err != nil {
			c.log.Error("deleting a failed message's content", "err", err)
		}
		m.frags = nil
		c.notify()
	}
	for _, ct := range c.contacts {
		if ct.helloAttempts >= c.cfg.MaxAttempts && !ct.helloDue.After(now) {
			ct.helloAttempts = 0 // a later message tries again
		}
	}
}

// startSession begins a session with the contact (PQXDH as initiator).
func (c *Client) startSession(ct *contact, now time.Time) error {
	s, init, err := session.Start(c.cfg.Rand, c.id, ct.card)
	if err != nil {
		return fmt.Errorf("client: starting a session with %s: %w", ct.rec.Name, err)
	}
	s.Ratchet.SetClock(c.cfg.Clock)
	raw, err := init.MarshalBinary()
	if err != nil {
		return err
	}
	reason := uint8(helloNew)
	if ct.rec.Restored {
		reason = helloRestored
	}
	ct.sess = s
	sid := sha256.Sum256(raw)
	ct.rec.Session = &sessionRecord{Initiated: true, Initial: raw, Reason: reason, Established: now.UTC(), ID: sid[:]}
	ct.helloDue, ct.helloAttempts = time.Time{}, 0
	return c.saveContact(ct)
}

// sessionPacket seals a session record for the contact, with a SURB for
// its ack, and builds its packet. The ratchet state is saved before the
// packet exists, so that a crash can never make the client reuse a message
// key.
func (c *Client) sessionPacket(ct *contact, rec, initial []byte, m *outgoing, index int, now time.Time) ([]byte, error) {
	mine, theirs := c.ownProvider(), c.doc.Node(ed25519.PublicKey(ct.card.Provider[:]))
	if mine == nil || theirs == nil {
		return nil, fmt.Errorf("client: %s's provider or yours is not in the network document", ct.rec.Name)
	}
	var surbID [sphinx.SURBIDLength]byte
	if _, err := io.ReadFull(c.cfg.Rand, surbID[:]); err != nil {
		return nil, err
	}
	surb, token, err := c.format.NewSURB(c.cfg.Rand, c.route(theirs, mine, sphinx.Recipient{ID: c.id.Mailbox}, sphinx.SURBReply{ID: surbID}))
	if err != nil {
		return nil, err
	}
	sealed, err := ct.sess.Seal(session.KindData, rec)
	if err != nil {
		return nil, err
	}
	if err := c.saveContact(ct); err != nil {
		return nil, err
	}
	contents := envelope.Contents{Kind: envelope.KindSession, SURB: surb, Initial: initial, Header: sealed.Header, Ciphertext: sealed.Ciphertext}
	copy(contents.Sender[:], c.id.DH.PublicKey().Bytes())
	payload, err := envelope.Seal(ct.card.DHKey, &contents, c.format.Geometry().UserPayloadLength)
	if err != nil {
		return nil, err
	}
	packet, err := c.format.NewPacket(c.cfg.Rand, c.route(mine, theirs, sphinx.Recipient{ID: ct.card.Mailbox}), payload)
	if err != nil {
		return nil, err
	}
	c.pending[surbID] = &transmission{token: token, to: ct, msg: m, index: index, sentAt: now}
	return packet, nil
}

// loopPacket builds a loop packet: through the whole network back to the
// user's own mailbox, sealed to the user like any message.
func (c *Client) loopPacket(now time.Time) ([]byte, error) {
	mine := c.ownProvider()
	if mine == nil {
		return nil, fmt.Errorf("client: your provider is not in the network document")
	}
	contents := envelope.Contents{Kind: envelope.KindLoop}
	if _, err := io.ReadFull(c.cfg.Rand, contents.LoopID[:]); err != nil {
		return nil, err
	}
	payload, err := envelope.Seal([32]byte(c.id.DH.PublicKey().Bytes()), &contents, c.format.Geometry().UserPayloadLength)
	if err != nil {
		return nil, err
	}
	packet, err := c.format.NewPacket(c.cfg.Rand, c.route(mine, mine, sphinx.Recipient{ID: c.id.Mailbox}), payload)
	if err != nil {
		return nil, err
	}
	c.loops[contents.LoopID] = now
	return packet, nil
}

// dropPacket builds a drop packet: through the whole network to a random
// provider, which discards it. Its payload is random bytes after the
// envelope's version, as a sealed payload looks.
func (c *Client) dropPacket() ([]byte, error) {
	mine := c.ownProvider()
	providers := c.doc.Providers()
	if mine == nil || len(providers) == 0 {
		return nil, fmt.Errorf("client: your provider is not in the network document")
	}
	to := providers[c.rng.IntN(len(providers))]
	payload := make([]byte, c.format.Geometry().UserPayloadLength)
	payload[0] = envelope.Version
	if _, err := io.ReadFull(c.cfg.Rand, payload[1:]); err != nil {
		return nil, err
	}
	return c.format.NewPacket(c.cfg.Rand, c.route(mine, to, sphinx.Recipient{ID: directory.DropRecipient}), payload)
}

func (c *Client) ownProvider() *directory.Node {
	return c.doc.Node(ed25519.PublicKey(c.profile.Network.Provider.Identity[:]))
}

// route picks a path from one provider through a random mix of each layer
// to another, with an exponential delay of the document's mean at every
// hop but the last (Loopix), ending with the given commands.
func (c *Client) route(from, to *directory.Node, last ...sphinx.Command) []sphinx.PathHop {
	mean := c.doc.Parameters.MeanDelay
	hop := func(n *directory.Node) sphinx.PathHop {
		d := time.Duration(c.rng.ExpFloat64() * float64(mean))
		ms := min(d.Milliseconds(), math.MaxUint32)
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: sphinx.Commands{sphinx.NodeDelay{Milliseconds: uint32(ms)}}}
	}
	path := []sphinx.PathHop{hop(from)}
	for layer := uint8(1); layer <= c.doc.Parameters.Layers; layer++ {
		mixes := c.doc.Layer(layer)
		path = append(path, hop(mixes[c.rng.IntN(len(mixes))]))
	}
	return append(path, sphinx.PathHop{ID: to.ID(), PublicKey: to.SphinxKey, Commands: last})
}

// roundTrip is the expected time from sending a fragment to fetching its
// ack when nothing queues: the mean delays of both paths, a poll interval
// at each end, and a send slot at the recipient.
func (c *Client) roundTrip() time.Duration {
	p := c.doc.Parameters
	rt := 2*time.Duration(int(p.Layers)+1)*p.MeanDelay + 2*p.PollInterval
	if p.SendRate > 0 {
		rt += time.Duration(float64(time.Second) / p.SendRate)
	}
	return rt
}

// retryDelay is how long to wait for the ack of the attempt-th sending
// before sending again: the retransmission timeout (from the measured round
// trips, as TCP's, never under the expected round trip), doubled per
// attempt up to 8 times, times a uniform random factor from 1 to 2, so that
// the times of retransmissions do not form a pattern an adversary who
// drops packets could look for.
func (c *Client) retryDelay(attempt int) time.Duration {
	rto := max(2*c.roundTrip(), c.srtt+4*c.rttvar)
	backoff := time.Duration(1) << min(max(attempt-1, 0), 3)
	return time.Duration(float64(rto*backoff) * (1 + c.rng.Float64()))
}

// observeRoundTrip updates the smoothed round trip with a sample (RFC 6298).
func (c *Client) observeRoundTrip(sample time.Duration) {
	if c.srtt == 0 {
		c.srtt, c.rttvar = sample, sample/2
		return
	}
	diff := c.srtt - sample
	if diff < 0 {
		diff = -diff
	}
	c.rttvar = (3*c.rttvar + diff) / 4
	c.srtt = (7*c.srtt + sample) / 8
}
