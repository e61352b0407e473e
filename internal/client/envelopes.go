package client

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/mlkem"
	"errors"
	"fmt"
	"io"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// Envelopes: which form each payload takes (package envelope).
//
//   - A session's packets, once the contact holds the session, are keyed
//     with the session's envelope key for that direction
//     (session.EnvelopeKeys): post-quantum, and nothing in them names the
//     session or the sender.
//   - A hello, which carries the PQXDH Initial, is sealed to the contact's
//     signed prekeys with X-Wing, when the packet has room for it (the
//     default geometry has; a network of the previous release's 2,048-byte
//     payloads has not, and the hello goes in the classical form).
//   - Loops are keyed with the user's loop key or sealed to the user's own
//     prekeys, at random, half and half: sealed payloads can be told from
//     keyed ones with some advantage (docs/client.md), and with loops of
//     both forms arriving all the time, neither a hello nor a message shows
//     by its form.
//   - A contact whose software opens nothing else — a card of version 1,
//     and no word that it reads content version 4 — gets the classical
//     form, as does a session set up before this release until it is set
//     up again (contact.rekey).

// readsEnvelopeV2 is the content version whose readers open envelope
// version 2: a contact that says it reads it gets the keyed and sealed
// forms even if the card we hold of it is of version 1.
const readsEnvelopeV2 = 4

// opensSealed reports whether ct's software opens envelope version 2; ct.mu
// or c.mu is held.
func (ct *contact) opensSealed() bool {
	return ct.card.OpensSealed() || ct.rec.Reads >= readsEnvelopeV2
}

// keyed reports whether ct's session has envelope keys on this side:
// sessions set up before this release have none. ct.mu is held.
func (ct *contact) keyed() bool {
	return ct.sess != nil && ct.sess.Envelope.Send != [envelope.KeySize]byte{}
}

// mutuallyKeyed reports whether both sides hold ct's session's envelope
// keys (sessionRecord.PeerKeyed), so that the keyed form is opened at the
// other end. ct.mu is held.
func (ct *contact) mutuallyKeyed() bool {
	return ct.keyed() && ct.rec.Session != nil && ct.rec.Session.PeerKeyed
}

// sealing is how a session packet's payload is to be sealed: decided with
// the contact's lock held, done outside it.
type sealing struct {
	keyed   *[envelope.KeySize]byte // the session's send key: the keyed form
	prekeys *envelope.Prekeys       // the sealed form, if it fits
	// classical is the contact's identity key, for the classical form.
	classical [envelope.KeySize]byte
}

// sealingFor decides how to seal a session packet to ct that carries
// initial (nil once the contact holds the session); ct.mu is held.
func (c *Client) sealingFor(ct *contact, initial []byte) (sealing, error) {
	s := sealing{classical: ct.card.DHKey}
	if !ct.opensSealed() || c.hooks.classicalEnvelopes() {
		return s, nil
	}
	if initial == nil && ct.mutuallyKeyed() {
		key := ct.sess.Envelope.Send
		s.keyed = &key
		return s, nil
	}
	if initial != nil {
		p, err := prekeysOf(ct.card)
		if err != nil {
			return s, err
		}
		s.prekeys = &p
	}
	return s, nil
}

// seal seals the contents of a packet's payload of size bytes as s says:
// the sealed form falls back to the classical one when it does not fit.
func (s sealing) seal(rand io.Reader, contents *envelope.Contents, size int) ([]byte, error) {
	if s.keyed != nil {
		return envelope.SealKeyed(rand, s.keyed, contents, size)
	}
	if s.prekeys != nil {
		p, err := envelope.Seal(rand, *s.prekeys, contents, size)
		if !errors.Is(err, envelope.ErrTooLong) {
			return p, err
		}
	}
	return envelope.SealClassical(s.classical, contents, size)
}

// prekeysOf returns what the sealed form seals to from a card.
func prekeysOf(card *identity.Card) (envelope.Prekeys, error) {
	pq, err := mlkem.NewEncapsulationKey768(card.PQPrekey.Key[:])
	if err != nil {
		return envelope.Prekeys{}, fmt.Errorf("client: the card's ML-KEM prekey: %w", err)
	}
	x, err := ecdh.X25519().NewPublicKey(card.Prekey.Key[:])
	if err != nil {
		return envelope.Prekeys{}, fmt.Errorf("client: the card's prekey: %w", err)
	}
	return envelope.Prekeys{PQ: pq, X25519: x}, nil
}

// prekeyOpeners makes what opens payloads sealed to the identity's
// prekeys, current and retired.
func prekeyOpeners(id *identity.Identity) ([]hpke.PrivateKey, error) {
	var out []hpke.PrivateKey
	for _, p := range id.PrekeyPairs() {
		k, err := envelope.PrekeyOpener(p.PQ, p.X25519)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// openKeys gathers what opens a payload addressed to the user: each
// contact's session receive key (with the contact it names), the loop key,
// the prekeys and the identity key. c.mu is held.
func (c *Client) openKeys() (*envelope.Keys, []*contact) {
	keys := &envelope.Keys{Prekeys: c.prekeyOpeners, Identity: c.id.DH}
	var from []*contact
	for _, ct := range c.contacts {
		ct.mu.Lock()
		if ct.keyed() {
			key := ct.sess.Envelope.Receive
			keys.Keyed = append(keys.Keyed, &key)
			from = append(from, ct)
		}
		ct.mu.Unlock()
	}
	keys.Keyed = append(keys.Keyed, &c.loopKey)
	return keys, from
}

// sealLoop seals a loop packet's contents to the user: keyed or sealed, at
// random (see above).
func (c *Client) sealLoop(contents *envelope.Contents, size int, sealed bool) ([]byte, error) {
	if c.hooks.classicalEnvelopes() {
		return envelope.SealClassical(c.self.DHKey, contents, size)
	}
	if sealed {
		p, err := prekeysOf(c.self)
		if err != nil {
			return nil, err
		}
		return envelope.Seal(c.cfg.Rand, p, contents, size)
	}
	return envelope.SealKeyed(c.cfg.Rand, &c.loopKey, contents, size)
}

// openEnvelopes readies what opens payloads: the prekey openers, and the
// loop key, made and saved at the first start of this release.
func (c *Client) openEnvelopes() error {
	var err error
	if c.prekeyOpeners, err = prekeyOpeners(c.id); err != nil {
		return err
	}
	if len(c.profile.LoopKey) != len(c.loopKey) {
		p := c.profile
		p.LoopKey = make([]byte, len(c.loopKey))
		if _, err := io.ReadFull(c.cfg.Rand, p.LoopKey); err != nil {
			return err
		}
		if err := c.store.put(profileLabel, p); err != nil {
			return fmt.Errorf("client: saving the loop key: %w", err)
		}
		c.profile = p
	}
	copy(c.loopKey[:], c.profile.LoopKey)
	return nil
}

// rekeyIfOld drops a session whose envelope keys one side lacks (set up
// before this release, or with a contact on the previous release: what goes
// in it is classical) once the contact's software opens envelope version 2,
// and marks the contact
// for a new session (contactRecord.Rekey): its hello says why
// (helloRekey), and the contact replaces its own old session with it. Until
// the new session is confirmed, messages wait and the contact's, sealed in
// the old session, are sent again by it in the new one. ct.mu is held (or
// the contact is not shared yet); the caller saves the contact and sets
// contact.reestablish.
func (c *Client) rekeyIfOld(ct *contact) {
	if ct.sess == nil || ct.mutuallyKeyed() || !ct.opensSealed() {
		return
	}
	c.log.Info("setting up a contact's session again, with envelope keys: the one held dates from before them")
	ct.sess, ct.rec.Session, ct.rec.Rekey = nil, nil, true
}

// arrival is how a payload came: keyed (under a session's envelope key),
// and in an envelope of version 2 (so from software of this release).
type arrival struct {
	keyed, newSoftware bool
}
