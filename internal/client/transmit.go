package client

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
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
// geometry g next to an Initial of initialLength bytes, whichever way its
// ack comes back (acks.go): in the X25519 format a contact of the previous
// release needs a SURB beside it, and every packet keeps room for one, so
// that fragments cut before a contact's word on acks still fit after.
func envelopeSessionRoom(g sphinx.Geometry, initialLength int) int {
	if g.Scheme == sphinx.X25519 {
		return envelope.SessionRoom(g.UserPayloadLength, g.SURBLength(), initialLength)
	}
	return envelope.MessageRoom(g.UserPayloadLength, initialLength)
}

// build makes a planned packet, outside c.mu (see plan). changed reports
// a change the user sees (a message now sent whole).
type build func() (packet []byte, changed bool, err error)

// plan decides what a send event at now sends: the schedule's part — what
// goes, its attempt, its route, the counters — is done here, with c.mu
// held, and is cheap; the returned build does the cryptography (the
// session's ratchet, PQXDH for a new session, HPKE, Sphinx) and the
// session's fsync under the contact's lock alone, so that neither the
// user's writes nor the received packets wait for it. A nil build: no
// packet (no usable document).
func (c *Client) plan(ev event, now time.Time) (build, error) {
	if !c.documentUsable(now) {
		return nil, nil
	}
	switch ev {
	case evLoop:
		c.stats.LoopsSent++
		return c.planLoop(now)
	case evDrop:
		c.stats.DropsSent++
		return c.planDrop()
	}
	c.stats.SendSlots++
	// One slot in ackSlotShare is an ack slot, whatever the user sends: it
	// goes to an open ack channel if there is one (ackchannel.go). If its
	// packet cannot be made, the slot carries what any slot would: a slot
	// never goes empty.
	if c.rng.IntN(ackSlotShare) == 0 {
		if ct := c.nextAckChannel(now); ct != nil {
			b, n, err := c.planAckBatch(ct, now)
			if err == nil {
				return b, nil
			}
			c.stats.AcksNotSent += uint64(n)
			c.log.Debug("an ack channel packet is not sent", "err", err)
		}
	}
	// An urgent message's fragment goes even before the acks waiting (a
	// receiver of a large file has one to send for every fragment): acks
	// wait a slot, a deadline does not.
	if urgent := c.outbox.urgentWaiting(); len(urgent) > 0 {
		if b, err := c.planFragment(now, c.usableSessions(urgent), true); b != nil || err != nil {
			return b, err
		}
	}
	for len(c.acks) > 0 {
		a := c.acks[0]
		c.acks = c.acks[1:]
		b, err := c.planAck(a)
		if err != nil {
			c.stats.AcksNotSent++
			c.log.Debug("an ack is dropped", "err", err)
			continue
		}
		c.stats.AcksSent++
		return b, nil
	}
	if b, err := c.planSession(now); b != nil || err != nil {
		return b, err
	}
	c.stats.DropsSent++
	return c.planDrop()
}

// planSession plans the next hello or fragment that is due, or returns
// nil. Hellos go first: nothing else moves for a contact until its
// session is confirmed.
func (c *Client) planSession(now time.Time) (build, error) {
	waiting := c.withRestored(c.outbox.contactsWaiting())
	c.failExpired(now, waiting)
	usable := make(map[*contact]bool, len(waiting))
	for _, ct := range waiting {
		ct.mu.Lock()
		ok := ct.usable()
		hello := !ok && !ct.helloDue.After(now)
		if hello {
			if ct.sess == nil {
				ct.helloAttempts = 0 // a new session: build starts it
			}
			ct.helloAttempts++
			ct.helloDue = now.Add(c.retryDelay(ct.helloAttempts, ct.helloAttempts > fastAttempts))
		}
		ct.mu.Unlock()
		if hello {
			c.stats.HellosSent++
			return c.planSessionPacket(ct, nil, nil, 0, now)
		}
		usable[ct] = ok
	}
	return c.planFragment(now, usable, false)
}

// usableSessions says which of the contacts have a usable session.
func (c *Client) usableSessions(contacts []*contact) map[*contact]bool {
	usable := make(map[*contact]bool, len(contacts))
	for _, ct := range contacts {
		ct.mu.Lock()
		usable[ct] = ct.usable()
		ct.mu.Unlock()
	}
	return usable
}

// planFragment plans the next due fragment to a contact with a usable
// session (an urgent message's only, if urgentOnly), or returns nil.
func (c *Client) planFragment(now time.Time, usable map[*contact]bool, urgentOnly bool) (build, error) {
	p, ok := c.outbox.nextFragment(now, usable, c.retryDelay, urgentOnly)
	if !ok {
		return nil, nil
	}
	c.stats.FragmentsSent++
	if p.again {
		c.stats.Retransmissions++
	}
	return c.planSessionPacket(p.m.to, p.record, p.m, p.index, now)
}

// withRestored adds to the contacts with messages waiting those whose
// session a restore lost and that are not set up again yet
// (contact.reestablish), in a fixed order; c.mu is held.
func (c *Client) withRestored(waiting []*contact) []*contact {
	var restored []*contact
	for _, ct := range c.contacts {
		if !ct.reestablish || slices.Contains(waiting, ct) {
			continue
		}
		ct.mu.Lock()
		usable := ct.usable() // the contact set one up first
		ct.mu.Unlock()
		if usable {
			ct.reestablish = false
			continue
		}
		restored = append(restored, ct)
	}
	slices.SortFunc(restored, func(a, b *contact) int { return strings.Compare(a.key, b.key) })
	return append(waiting, restored...)
}

// failExpired marks failed the messages whose deadline passed, and stops
// setting up again (after a restore) a session that no message waits for
// and whose hello used its fast attempts.
func (c *Client) failExpired(now time.Time, waiting []*contact) {
	unset := map[*contact]string{}
	for _, ct := range waiting {
		ct.mu.Lock()
		if !ct.usable() && ct.helloAttempts > 0 {
			unset[ct] = fmt.Sprintf("the session with %s was never set up (%d hellos unanswered this run); their client may be offline, or the way to it broken", ct.rec.Name, ct.helloAttempts)
			if ct.reestablish && ct.helloAttempts >= fastAttempts && !ct.helloDue.After(now) {
				ct.reestablish = false // a message to them tries again
			}
		}
		ct.mu.Unlock()
	}
	for _, m := range c.outbox.failExpired(now, c.cfg.TimeBudget, unset) {
		c.expireLater(m)
		c.notify()
	}
}

// planSessionPacket plans a session record for the contact — a hello if
// record is nil, else a fragment of m — asking for its ack the way the
// contact takes (acks.go): its routes are drawn here; the returned build
// seals and makes the packet.
func (c *Client) planSessionPacket(ct *contact, record []byte, m *outgoing, index int, now time.Time) (build, error) {
	card := ct.shown.Load().card
	mine, theirs := c.ownProvider(), c.doc.Node(ed25519.PublicKey(card.Provider[:]))
	if mine == nil || theirs == nil {
		return nil, fmt.Errorf("client: %s's provider or yours is not in the network document", ct.rec.Name)
	}
	out := c.route(mine, theirs, sphinx.Recipient{ID: card.Mailbox})
	forward := c.forwardAcks(ct)
	var back []sphinx.PathHop
	if !forward {
		back = c.route(theirs, mine, sphinx.Recipient{ID: c.id.Mailbox}, sphinx.SURBReply{}) // its ID is drawn in the build
	}
	format := c.format
	return func() ([]byte, bool, error) {
		header, ciphertext, initial, how, err := c.seal(ct, record, now)
		if err != nil {
			return nil, false, err
		}
		id, err := c.newAckID()
		if err != nil {
			return nil, false, err
		}
		contents := envelope.Contents{Kind: envelope.KindMessage, AckID: id, Initial: initial, Header: header, Ciphertext: ciphertext}
		var token []byte
		if !forward {
			back[len(back)-1].Commands = sphinx.Commands{sphinx.Recipient{ID: c.id.Mailbox}, sphinx.SURBReply{ID: id}}
			if contents.SURB, token, err = format.NewSURB(c.cfg.Rand, back); err != nil {
				return nil, false, err
			}
			contents.Kind, contents.AckID = envelope.KindSession, [envelope.AckIDSize]byte{}
		}
		copy(contents.Sender[:], c.id.DH.PublicKey().Bytes())
		payload, err := how.seal(c.cfg.Rand, &contents, format.Geometry().UserPayloadLength)
		if err != nil {
			return nil, false, err
		}
		packet, err := format.NewPacket(c.cfg.Rand, out, payload)
		if err != nil {
			return nil, false, err
		}
		c.outbox.sentWith(id, &transmission{token: token, to: ct, msg: m, index: index, sentAt: now})
		return packet, m != nil && c.outbox.sentOnce(m), nil
	}, nil
}

// seal seals a session record for the contact under its lock — a hello
// (record nil), which starts the session if there is none, or a fragment
// — and saves the ratchet before the packet exists, so that a crash can
// never make the client reuse a message key. initial is the session's
// Initial while the peer has not confirmed it; how says how to seal the
// payload (envelopes.go).
func (c *Client) seal(ct *contact, record []byte, now time.Time) (header, ciphertext, initial []byte, how sealing, err error) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if record == nil {
		if ct.sess == nil {
			if err := c.startSession(ct, now); err != nil {
				return nil, nil, nil, how, err
			}
		}
		record, initial = []byte{recordHello, ct.rec.Session.Reason}, ct.rec.Session.Initial
	}
	sealed, err := ct.sess.Seal(session.KindData, record)
	if err != nil {
		return nil, nil, nil, how, err
	}
	if err := c.saveContact(ct); err != nil {
		return nil, nil, nil, how, err
	}
	how, err = c.sealingFor(ct, initial)
	return sealed.Header, sealed.Ciphertext, initial, how, err
}

// startSession begins a session with the contact (PQXDH as initiator);
// ct.mu is held.
func (c *Client) startSession(ct *contact, now time.Time) error {
	s, init, err := session.Start(c.hooks.sessionRand(c.cfg.Rand), c.id, ct.card)
	if err != nil {
		return fmt.Errorf("client: starting a session with %s: %w", ct.rec.Name, err)
	}
	s.Ratchet.SetClock(c.cfg.Clock)
	raw, err := init.MarshalBinary()
	if err != nil {
		return err
	}
	reason := uint8(helloNew)
	switch {
	case ct.rec.Restored:
		reason = helloRestored
	case ct.rec.Rekey:
		reason = helloRekey
	}
	ct.sess = s
	sid := sha256.Sum256(raw)
	ct.rec.Session = &sessionRecord{Initiated: true, Initial: raw, Reason: reason, Established: now.UTC(), ID: sid[:], PeerKeyed: ct.opensSealed()}
	return c.saveContact(ct)
}

// planLoop plans a loop packet: through the whole network back to the
// user's own mailbox, keyed or sealed to the user at random (envelopes.go).
func (c *Client) planLoop(now time.Time) (build, error) {
	mine := c.ownProvider()
	if mine == nil {
		return nil, fmt.Errorf("client: your provider is not in the network document")
	}
	contents := envelope.Contents{Kind: envelope.KindLoop}
	if _, err := io.ReadFull(c.cfg.Rand, contents.LoopID[:]); err != nil {
		return nil, err
	}
	c.loops[contents.LoopID] = now
	path, format := c.route(mine, mine, sphinx.Recipient{ID: c.id.Mailbox}), c.format
	sealed := c.rng.IntN(2) == 0
	return func() ([]byte, bool, error) {
		payload, err := c.sealLoop(&contents, format.Geometry().UserPayloadLength, sealed)
		if err != nil {
			return nil, false, err
		}
		packet, err := format.NewPacket(c.cfg.Rand, path, payload)
		return packet, false, err
	}, nil
}

// planDrop plans a drop packet: through the whole network to a random
// provider, which discards it. Its payload is random bytes after the
// envelope's version, as a keyed payload looks.
func (c *Client) planDrop() (build, error) {
	mine := c.ownProvider()
	providers := c.doc.Providers()
	if mine == nil || len(providers) == 0 {
		return nil, fmt.Errorf("client: your provider is not in the network document")
	}
	to := providers[c.rng.IntN(len(providers))]
	path, format := c.route(mine, to, sphinx.Recipient{ID: directory.DropRecipient}), c.format
	return func() ([]byte, bool, error) {
		payload := make([]byte, format.Geometry().UserPayloadLength)
		payload[0] = envelope.Version
		if _, err := io.ReadFull(c.cfg.Rand, payload[1:]); err != nil {
			return nil, false, err
		}
		packet, err := format.NewPacket(c.cfg.Rand, path, payload)
		return packet, false, err
	}, nil
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
// at each end, and the wait for an ack slot at the recipient (ackchannel.go;
// one contact's, as a recipient with more open channels waits longer, the
// measured round trips say).
func (c *Client) roundTrip() time.Duration {
	p := c.doc.Parameters
	rt := 2*time.Duration(int(p.Layers)+1)*p.MeanDelay + 2*p.PollInterval
	if p.SendRate > 0 {
		rt += time.Duration(float64(ackSlotShare) * float64(time.Second) / p.SendRate)
	}
	return rt
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
