package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
)

// receive handles fetched mailbox packets. Everything it keeps is stored
// before it returns, and so before the next fetch acknowledges the packets
// to the provider. It takes c.mu.
func (c *Client) receive(batch []clientlink.Fetched, now time.Time) error {
	c.mu.Lock()
	defer c.unlock()
	if err := c.stopped(); err != nil {
		return err
	}
	for _, f := range batch {
		c.stats.Fetched++
		var d wire.Delivery
		if err := d.UnmarshalBinary(f.Packet); err != nil {
			c.stats.Undecryptable++
			continue
		}
		if d.SURBID != nil {
			c.receiveAck(*d.SURBID, d.Payload, now)
			continue
		}
		c.receivePayload(d.Payload, now)
	}
	return nil
}

// receiveAck handles a SURB reply: the ack of one transmission.
func (c *Client) receiveAck(id [16]byte, payload []byte, now time.Time) {
	t := c.outbox.transmission(id)
	if t == nil {
		// A SURB of an earlier run (its key was not kept) or a repeat:
		// the fragment is sent again and acknowledged again.
		c.stats.Undecryptable++
		return
	}
	plain, err := c.format.DecryptSURBPayload(t.token, payload)
	if err != nil {
		c.stats.Undecryptable++
		return
	}
	if _, err := envelope.ParseAck(plain); err != nil {
		c.stats.Undecryptable++
		return
	}
	c.outbox.answered(id)
	c.stats.SURBAcks++
	c.acknowledged(t, now)
}

// acknowledged records the ack of a transmission.
func (c *Client) acknowledged(t *transmission, now time.Time) {
	c.stats.AcksReceived++
	c.observeRoundTrip(now.Sub(t.sentAt))
	ct := t.to
	if t.msg == nil {
		// The hello arrived: the peer holds the session.
		ct.mu.Lock()
		if ct.rec.Session != nil && ct.rec.Session.Initiated && !ct.rec.Session.Confirmed && ct.sess != nil {
			c.confirm(ct)
		}
		ct.mu.Unlock()
		return
	}
	if c.outbox.acknowledge(t.msg, t.index, now) {
		c.expireLater(t.msg)
		c.delivered(t.msg)
		c.notify()
	}
}

// confirm marks an initiated session as held by the peer; ct.mu is held.
// A session set up again for envelope keys replaced one the peer dropped:
// what was sealed in that one and not acknowledged goes again at once.
func (c *Client) confirm(ct *contact) {
	if ct.rec.Rekey {
		c.outbox.resumeAll(ct, c.cfg.Clock.Now())
	}
	ct.rec.Session.Confirmed = true
	ct.rec.Session.Initial = nil
	ct.rec.Restored, ct.rec.Rekey = false, false
	ct.reestablish = false
	if err := c.saveContact(ct); err != nil {
		c.log.Error("saving a session", "err", err)
	}
	c.notify()
}

// receivePayload handles a packet addressed to the user's mailbox: it
// opens the envelope with every key it might be under (envelopes.go); a
// keyed payload is from the contact whose session key opened it.
func (c *Client) receivePayload(payload []byte, now time.Time) {
	keys, from := c.openKeys()
	contents, err := envelope.Open(keys, payload)
	if err != nil {
		c.stats.Undecryptable++
		return
	}
	if i := contents.Keyed; i >= 0 && i < len(from) {
		switch contents.Kind {
		case envelope.KindAck:
			c.receiveForwardAck(from[i], contents.AckID, now)
			return
		case envelope.KindAckBatch:
			c.receiveAckBatch(from[i], contents.AckIDs, now)
			return
		case envelope.KindSession, envelope.KindMessage:
		default:
			c.stats.Undecryptable++
			return
		}
		contents.Sender = from[i].card.DHKey
	} else if i >= 0 && contents.Kind != envelope.KindLoop {
		// The loop key opens loops only.
		c.stats.Undecryptable++
		return
	}
	switch contents.Kind {
	case envelope.KindLoop:
		if _, ok := c.loops[contents.LoopID]; ok {
			delete(c.loops, contents.LoopID)
			c.stats.LoopsReturned++
			c.notify()
		} else {
			c.stats.Duplicates++
		}
	case envelope.KindSession, envelope.KindMessage:
		how := arrival{keyed: contents.Keyed >= 0, newSoftware: payload[0] == envelope.Version}
		if err := c.receiveSession(&contents.Contents, how, now); err != nil {
			c.log.Debug("session message dropped", "err", err)
		}
	}
}

// receiveSession handles a session message: it sets up or opens the
// session, keeps what the message carries, and queues the ack only once
// that is stored.
func (c *Client) receiveSession(m *envelope.Contents, how arrival, now time.Time) error {
	ct := c.contacts[hex.EncodeToString(m.Sender[:])]
	if ct == nil {
		c.stats.FromStrangers++
		return errors.New("a message from someone who is not a contact")
	}
	ct.mu.Lock()
	rec, ack, err := c.openSession(ct, m, how, now)
	ct.mu.Unlock()
	if err != nil || !ack {
		return err
	}
	c.heardFrom(ct, now)
	if rec.typ == recordFragment {
		if err := c.keepFragment(ct, rec.fragment, now); err != nil {
			return err
		}
	}
	switch {
	case m.Kind == envelope.KindMessage && batchesAcks(ct):
		err = c.owe(ct, m.AckID)
	case m.Kind == envelope.KindMessage:
		err = c.queueForwardAck(ct, m.AckID)
	default:
		err = c.queueAck(m.SURB)
	}
	if err != nil {
		c.stats.AcksNotSent++
	}
	return err
}

// openSession sets up or opens the contact's session for a message and
// saves the session; ack reports whether the message is to be
// acknowledged, and rec is its record if it carries one to keep (a
// fragment). ct.mu is held.
func (c *Client) openSession(ct *contact, m *envelope.Contents, how arrival, now time.Time) (rec record, ack bool, err error) {
	msg := session.Message{Header: m.Header, Ciphertext: m.Ciphertext}
	if m.Initial != nil {
		var init session.Initial
		if err := init.UnmarshalBinary(m.Initial); err != nil {
			c.stats.Undecryptable++
			return rec, false, err
		}
		s, _, b, err := session.Accept(c.hooks.sessionRand(c.cfg.Rand), c.id, c.guard, ct.card, &init, msg)
		switch {
		case errors.Is(err, session.ErrReplay):
			// A hello sent again: fine if it set up the session we hold
			// (our ack was lost); otherwise a stale one.
			if ct.rec.Session == nil || !bytes.Equal(ct.rec.Session.PeerEphemeral, init.EphemeralKey[:]) {
				c.stats.Duplicates++
				return rec, false, err
			}
		case err != nil:
			c.stats.Undecryptable++
			return rec, false, err
		default:
			if err := c.saveGuard(); err != nil {
				return rec, false, err
			}
			hello, err := parseRecord(b)
			if err != nil || hello.typ != recordHello {
				c.stats.Undecryptable++
				return rec, false, fmt.Errorf("a session set up without a hello: %v", err)
			}
			if !c.adopt(ct, hello.reason) {
				// Not acknowledged: the peer adopts our session when our
				// hello reaches it, and stops sending this one.
				c.stats.Duplicates++
				return rec, false, nil
			}
			s.Ratchet.SetClock(c.cfg.Clock)
			ct.sess = s
			sid := sha256.Sum256(m.Initial)
			// A hello in an envelope of version 2 comes from software
			// that derived the session's envelope keys too.
			ct.rec.Session = &sessionRecord{PeerEphemeral: init.EphemeralKey[:], Confirmed: true, Established: now.UTC(), ID: sid[:], PeerKeyed: how.newSoftware}
			if err := c.saveContact(ct); err != nil {
				return rec, false, err
			}
			// The contact is back, in a new session: what waits for it
			// goes again at once, sealed in this one.
			c.outbox.resumeAll(ct, now)
			c.notify()
			return rec, true, nil
		}
	}
	if ct.sess == nil {
		c.stats.Undecryptable++
		return rec, false, errors.New("a session message with no session")
	}
	kind, body, err := ct.sess.Open(msg)
	if err != nil {
		c.stats.Undecryptable++
		return rec, false, err
	}
	if how.keyed {
		// It came under the session's envelope key: the peer holds it.
		ct.rec.Session.PeerKeyed = true
	}
	if s := ct.rec.Session; s.Initiated && !s.Confirmed {
		// Only a peer that accepted our Initial can seal in this session.
		if ct.rec.Rekey {
			c.outbox.resumeAll(ct, now)
		}
		s.Confirmed, s.Initial = true, nil
		ct.rec.Restored, ct.rec.Rekey = false, false
		ct.reestablish = false
		c.notify()
	}
	if err := c.saveContact(ct); err != nil {
		return rec, false, err
	}
	if kind == session.KindCardUpdate {
		return rec, true, nil
	}
	rec, err = parseRecord(body)
	return rec, err == nil, err
}

// adopt decides whether a new session the peer set up replaces the one the
// user holds, which happens when both sides started one at once. It
// returns true to adopt it.
//
// If the user has no session, or started one the peer has not confirmed,
// the tie is broken by identity key: the session started by the smaller
// key wins, so both sides end up in the same one. A confirmed session is
// replaced only if the peer says it restored from a backup (and the user is
// told), or that it sets up a session whose envelope keys both hold;
// otherwise the new hello is a stale one from such a tie.
func (c *Client) adopt(ct *contact, reason uint8) bool {
	s := ct.rec.Session
	switch {
	case ct.sess == nil:
		return true
	case s.Initiated && !s.Confirmed:
		mine := c.id.DH.PublicKey().Bytes()
		return bytes.Compare(ct.card.DHKey[:], mine) < 0
	case reason == helloRestored:
		ct.rec.Notice = fmt.Sprintf("%s set up your session again (they restored from a backup); compare safety numbers if you did not expect it", ct.rec.Name)
		return true
	case reason == helloRekey:
		// The peer's software sets up a session whose envelope keys
		// both sides hold, in place of one whose keys at least one side
		// lacks (envelopes.go); only the peer can make the hello.
		return true
	}
	return false
}

// keepFragment keeps a received fragment and, when it completes its
// message, delivers the message — to the inbox, or to its feature — once.
func (c *Client) keepFragment(ct *contact, raw []byte, now time.Time) error {
	id, whole, duplicate, err := c.inbox.keep(ct.key, raw, now)
	if duplicate {
		c.stats.Duplicates++
		return nil // acknowledged again, not delivered again
	}
	if err != nil || whole == nil {
		return err
	}
	content, err := parseContent(whole)
	if err != nil {
		return err
	}
	switch content.Kind {
	case Text, File:
		rec := inRecord{Version: StateVersion, ID: id, From: ct.key, Kind: content.Kind.String(), Name: content.Name, Body: content.Body, Received: now.UTC(), Sent: content.Sent}
		if content.TTL > 0 {
			rec.Expires = now.UTC().Add(content.TTL)
		}
		if err := c.inbox.add(rec); err != nil {
			return err
		}
		if content.TTL > 0 {
			c.expiring[expiryKey{id: id}] = rec.Expires
		}
	case capabilities:
		if err := c.readCapabilities(ct, content); err != nil {
			c.stats.Refused++
			c.log.Warn("a message was refused", "kind", content.Kind.String(), "err", err)
		}
	default:
		// A malformed control message is refused with an error in the
		// log and the counters; it is still acknowledged (a retry would
		// be just as malformed) and the session goes on.
		if err := c.dispatch(ct, content, id); err != nil {
			c.stats.Refused++
			c.log.Warn("a message was refused", "kind", content.Kind.String(), "err", err)
		}
	}
	if err := c.inbox.settle(ct.key, id, now); err != nil {
		return err
	}
	if content.Kind != capabilities {
		c.stats.MessagesReceived++
	}
	c.notify()
	return nil
}
