package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/endtoend/session"
)

// contact is a contact in memory. The contacts map is c.mu's; a contact's
// own lock, mu, guards its session — sess, rec.Session, the hello's
// schedule, and card (a card update arrives in the session) — so that a
// packet is sealed in one session while c.mu is free. Its other fields are
// written holding both c.mu and mu, so either one lets them be read.
// saveContact writes the whole record: mu is held. Lock order: c.mu, then
// a contact's mu, then the outbox's or the inbox's.
type contact struct {
	mu   sync.Mutex
	key  string // identity key hex
	rec  contactRecord
	card *identity.Card
	sess *session.Session
	// The hello's schedule while the session is unconfirmed.
	helloDue      time.Time
	helloAttempts int
	// safety is the safety number with the user, once computed; c.mu's.
	safety string
	// reestablish: the state was restored from a backup (which keeps no
	// sessions) and no new session is confirmed yet, so the client sets
	// one up at once, without waiting for the user to write — the
	// contact's messages, sealed in the session the backup lost, are
	// unreadable until then, and the contact cannot tell who sent them.
	// Cleared when the session is confirmed, or when its hello used every
	// attempt (until the next start, or a message to the contact); c.mu's.
	reestablish bool
	// acks is the ack channel to the contact (ackchannel.go); c.mu's.
	acks ackChannel
	// shown is the session as the user and the features see it, replaced
	// whole (under mu) each time the session's state is saved, and read
	// without mu: publishing the view never waits for a packet sealed in
	// this session.
	shown atomic.Pointer[shownSession]
}

// shownSession is a contact's session as readers see it.
type shownSession struct {
	state string         // "none", "setting up", "established"
	card  *identity.Card // the contact's card (a card update arrives in the session)
	id    []byte         // the session's ID once it is usable
	// envelope says whether what goes to the contact is post-quantum
	// (ContactInfo.Envelope).
	envelope string
}

// show publishes the session's state for readers; ct.mu is held (or the
// contact is not shared yet).
func (ct *contact) show() {
	s := &shownSession{state: "none", card: ct.card}
	switch {
	case ct.usable():
		s.state = "established"
		if ct.rec.Session != nil {
			s.id = ct.rec.Session.ID
		}
	case ct.sess != nil:
		s.state = "setting up"
	}
	switch {
	case !ct.opensSealed():
		s.envelope = EnvelopeOlderSoftware
	case ct.rec.Rekey:
		s.envelope = EnvelopeRekeying
	case ct.mutuallyKeyed():
		s.envelope = EnvelopePostQuantum
	case ct.keyed():
		s.envelope = EnvelopeWaiting
	}
	ct.shown.Store(s)
}

// usable reports whether fragments may be sealed in the contact's
// session; ct.mu is held.
func (ct *contact) usable() bool {
	return ct.sess != nil && (!ct.rec.Session.Initiated || ct.rec.Session.Confirmed)
}

func (c *Client) loadContacts() error {
	keys, err := contactKeys(c.store)
	if err != nil {
		return err
	}
	for _, key := range keys {
		ct := &contact{key: key}
		if err := c.store.get(contactLabel(key), &ct.rec); err != nil {
			return err
		}
		if ct.card, err = identity.ParseCard(ct.rec.Card); err != nil {
			return fmt.Errorf("client: contact %q: %w", ct.rec.Name, err)
		}
		if s := ct.rec.Session; s != nil {
			r, err := session.UnmarshalRatchet(s.Ratchet, c.hooks.sessionRand(c.cfg.Rand))
			if err != nil {
				return fmt.Errorf("client: contact %q: %w", ct.rec.Name, err)
			}
			r.SetClock(c.cfg.Clock)
			ct.sess = &session.Session{Ratchet: r, AD: s.AD, Peer: ct.card}
			if len(s.EnvelopeSend) == envelope.KeySize && len(s.EnvelopeReceive) == envelope.KeySize {
				ct.sess.Envelope = session.EnvelopeKeys{Send: [envelope.KeySize]byte(s.EnvelopeSend), Receive: [envelope.KeySize]byte(s.EnvelopeReceive)}
			}
		}
		c.rekeyIfOld(ct)
		ct.reestablish = ct.rec.Restored || ct.rec.Rekey
		ct.show()
		c.contacts[ct.key] = ct
	}
	return nil
}

// ContactInfo is a contact as the user sees it.
type ContactInfo struct {
	Name         string
	SafetyNumber string
	Verified     bool
	Session      string // "none", "setting up", "established"
	Notice       string
	// Expiry is how long the conversation's messages live (0: for ever).
	Expiry time.Duration
	// Reads is the latest message format (content version) the contact's
	// software said it reads; 0 until it says (capabilities.go).
	Reads int
	// TimeBudget is how long messages to the contact may take before they
	// fail, if set for the contact (0: the client's).
	TimeBudget time.Duration
	// Envelope says whether what goes to and comes from the contact is
	// safe from someone who records it and later breaks X25519: one of
	// the Envelope constants, or "" while there is no session.
	Envelope string
}

// ContactInfo.Envelope values.
const (
	EnvelopePostQuantum   = "post-quantum"
	EnvelopeOlderSoftware = "classical: their software is of the previous release"
	EnvelopeRekeying      = "classical until the new session is set up"
	EnvelopeWaiting       = "classical until the contact's software shows it holds the session's keys"
)

// ErrNoContact: no contact has that name.
var ErrNoContact = errors.New("client: no such contact")

// AddContact adds the owner of card as a contact called name.
func (c *Client) AddContact(name string, card *identity.Card) error {
	if err := card.Verify(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	return c.addContact(name, card)
}

// checkName checks a new contact name: 1 to 64 bytes, not another
// contact's.
func (c *Client) checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("client: a contact name must be 1 to 64 bytes, not %q", name)
	}
	if c.byName(name) != nil {
		return fmt.Errorf("client: you already have a contact called %q", name)
	}
	return nil
}

// addContact adds a contact; c.mu is held and the card verified.
func (c *Client) addContact(name string, card *identity.Card) error {
	if err := c.checkName(name); err != nil {
		return err
	}
	key := hexKey(card.DHKey)
	if bytes.Equal(card.DHKey[:], c.id.DH.PublicKey().Bytes()) {
		return errors.New("client: that card is your own")
	}
	if c.contacts[key] != nil {
		return fmt.Errorf("client: that card is already your contact %q", c.contacts[key].rec.Name)
	}
	raw, err := card.MarshalBinary()
	if err != nil {
		return err
	}
	ct := &contact{key: key, card: card, rec: contactRecord{Version: StateVersion, Name: name, Card: raw, Added: c.cfg.Clock.Now().UTC()}}
	ct.mu.Lock()
	err = c.saveContact(ct)
	ct.mu.Unlock()
	if err != nil {
		return err
	}
	c.contacts[key] = ct
	c.notify()
	return nil
}

func (c *Client) byName(name string) *contact {
	for _, ct := range c.contacts {
		if ct.rec.Name == name {
			return ct
		}
	}
	return nil
}

// Contacts lists the contacts by name.
func (c *Client) Contacts() []ContactInfo { return c.view.Load().contacts }

// changeContact changes the record of the contact called name with
// change, and saves it; c.mu and the contact's lock are held for change.
func (c *Client) changeContact(name string, change func(ct *contact) error) error {
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(name)
	if ct == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	saved := ct.rec
	if err := change(ct); err != nil {
		return err
	}
	if err := c.saveContact(ct); err != nil {
		ct.rec = saved
		ct.show()
		return err
	}
	c.notify()
	return nil
}

// Verify marks a contact's safety number as compared out of band.
func (c *Client) Verify(name string) error {
	return c.changeContact(name, func(ct *contact) error {
		ct.rec.Verified = true
		return nil
	})
}

// Rename gives a contact a new name. The name is the user's alone: the
// contact is not told, and the messages, introductions, checks and
// conveyed messages with them follow (they refer to the contact's key).
func (c *Client) Rename(name, newName string) error {
	return c.changeContact(name, func(ct *contact) error {
		if newName == name {
			return nil
		}
		if err := c.checkName(newName); err != nil {
			return err
		}
		ct.rec.Name = newName
		return nil
	})
}

// SetTimeBudget sets how long messages to a contact may take to be
// acknowledged before they fail (0: the client's budget). Messages queued
// before keep theirs.
func (c *Client) SetTimeBudget(name string, budget time.Duration) error {
	if budget < 0 {
		return fmt.Errorf("client: a time budget of %v", budget)
	}
	return c.changeContact(name, func(ct *contact) error {
		ct.rec.TimeBudget = budget
		return nil
	})
}

// saveContact saves the contact's record with its session's state; ct.mu
// is held.
func (c *Client) saveContact(ct *contact) error {
	if ct.sess != nil {
		if ct.rec.Session == nil {
			return errors.New("client: a session without its record")
		}
		r, err := ct.sess.Ratchet.MarshalBinary()
		if err != nil {
			return err
		}
		ct.rec.Session.Ratchet = r
		ct.rec.Session.AD = ct.sess.AD
		if ct.keyed() {
			ct.rec.Session.EnvelopeSend, ct.rec.Session.EnvelopeReceive = ct.sess.Envelope.Send[:], ct.sess.Envelope.Receive[:]
		}
		if ct.sess.Peer != ct.card {
			// A card update arrived in the session.
			raw, err := ct.sess.Peer.MarshalBinary()
			if err != nil {
				return err
			}
			ct.card, ct.rec.Card = ct.sess.Peer, raw
		}
	} else {
		ct.rec.Session = nil
	}
	ct.show()
	return c.store.put(contactLabel(ct.key), ct.rec)
}

// hexKey names a contact by its identity key.
func hexKey(k [32]byte) string { return hex.EncodeToString(k[:]) }

func (c *Client) nameOf(key string) string {
	if ct := c.contacts[key]; ct != nil {
		return ct.rec.Name
	}
	return "(a former contact)"
}

// freeName returns name, or name with a number if a contact has it.
func (c *Client) freeName(name string) string {
	if len(name) > 60 {
		name = name[:60]
	}
	for i, n := 2, name; ; i++ {
		if c.byName(n) == nil {
			return n
		}
		n = fmt.Sprintf("%s (%d)", name, i)
	}
}
