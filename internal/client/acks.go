package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// Acknowledgements: every session packet (a hello or a fragment) is
// acknowledged by its recipient once what it carries is stored, and comes
// back in one of three ways. To a contact whose software reads content
// version 6, acks go in the packets of the ack channel (ackchannel.go),
// on the acknowledger's schedule; to others, one of:
//
//   - Forward acks (envelope.KindMessage, KindAck): the message names
//     itself by a random ack ID, and the recipient sends a forward packet
//     to the sender's mailbox — at the provider the card names — whose
//     payload is keyed with the session's envelope key for that direction
//     and carries the ID. At the sender's provider, messages, acks and
//     loops then all arrive as forward packets in one form: the provider
//     cannot tell from a burst of acks that its user has been talking. A
//     message spends 16 bytes of payload on its ack, not a 684-byte SURB
//     (7,372 bytes in the X-Wing format, more than a packet's payload),
//     and the ack costs one packet, as a SURB reply did.
//   - SURB acks (envelope.KindSession): the message carries a SURB, and
//     the recipient's reply through it carries an envelope.Ack. This is the
//     previous release's way: a contact whose software has not said it
//     reads content version 5 gets it, in a network of the X25519 format
//     (the previous release knows no other, and only there does a SURB fit
//     in a packet). Its replies show the provider a SURB-reply command.
//
// Either way an ack is believed only if it opens: a SURB reply under the
// SURB's keys, a forward ack under the contact's session key, and for a
// transmission sent to that same contact.

// readsForwardAcks is the content version whose readers take
// envelope.KindMessage and acknowledge it by a forward packet.
const readsForwardAcks = 5

// forwardAcks reports whether packets to ct ask for forward acks; c.mu is
// held.
func (c *Client) forwardAcks(ct *contact) bool {
	return c.geometry().Scheme != sphinx.X25519 || ct.rec.Reads >= readsForwardAcks
}

// pendingAck is an ack waiting for a send slot: a SURB reply made when the
// message came, or a forward ack to be made when the slot comes.
type pendingAck struct {
	surbReply []byte
	to        *contact
	id        [envelope.AckIDSize]byte
}

// queueAck queues the ack of a message that carried a SURB: the reply is
// made now (one LIONESS encryption).
func (c *Client) queueAck(surb []byte) error {
	if len(c.acks) >= maxQueuedAcks {
		return errors.New("too many acks waiting")
	}
	ack, _ := envelope.Ack{}.MarshalBinary()
	packet, first, err := c.format.NewPacketFromSURB(surb, ack)
	if err != nil {
		return err
	}
	if own := c.ownProvider(); own == nil || first != own.ID() {
		return errors.New("a SURB that does not start at your provider")
	}
	c.acks = append(c.acks, pendingAck{surbReply: packet})
	return nil
}

// queueForwardAck queues the ack of a message that named itself by id, to
// be sent to ct's mailbox; c.mu is held.
func (c *Client) queueForwardAck(ct *contact, id [envelope.AckIDSize]byte) error {
	if len(c.acks) >= maxQueuedAcks {
		return errors.New("too many acks waiting")
	}
	c.acks = append(c.acks, pendingAck{to: ct, id: id})
	return nil
}

// planAck plans the next ack's packet; c.mu is held.
func (c *Client) planAck(a pendingAck) (build, error) {
	if a.to == nil {
		return func() ([]byte, bool, error) { return a.surbReply, false, nil }, nil
	}
	return c.planKeyed(a.to, envelope.Contents{Kind: envelope.KindAck, AckID: a.id})
}

// planKeyed plans a forward packet to ct's mailbox whose payload is keyed
// with the session's envelope key (an ack, or a packet of the ack
// channel); c.mu is held. Its route is drawn here and its key read under
// the contact's lock; the sealing and the Sphinx layers are done by the
// build, outside the locks.
func (c *Client) planKeyed(ct *contact, contents envelope.Contents) (build, error) {
	card := ct.shown.Load().card
	mine, to := c.ownProvider(), c.doc.Node(ed25519.PublicKey(card.Provider[:]))
	if mine == nil || to == nil {
		return nil, fmt.Errorf("client: %s's provider or yours is not in the network document", ct.rec.Name)
	}
	ct.mu.Lock()
	keyed := ct.keyed()
	var key [envelope.KeySize]byte
	if keyed {
		key = ct.sess.Envelope.Send
	}
	ct.mu.Unlock()
	if !keyed {
		return nil, fmt.Errorf("client: no envelope key to acknowledge %s's messages with", ct.rec.Name)
	}
	path, format := c.route(mine, to, sphinx.Recipient{ID: card.Mailbox}), c.format
	return func() ([]byte, bool, error) {
		payload, err := envelope.SealKeyed(c.cfg.Rand, &key, &contents, format.Geometry().UserPayloadLength)
		clear(key[:])
		if err != nil {
			return nil, false, err
		}
		packet, err := format.NewPacket(c.cfg.Rand, path, payload)
		return packet, false, err
	}, nil
}

// receiveForwardAck handles a forward ack that opened under ct's session
// key: it acknowledges the transmission it names, if that went to ct.
func (c *Client) receiveForwardAck(ct *contact, id [envelope.AckIDSize]byte, now time.Time) {
	t := c.outbox.transmission(id)
	if t == nil || t.to != ct {
		// A repeat (the fragment was sent again and acknowledged again),
		// or an ID of an earlier run.
		c.stats.Duplicates++
		return
	}
	c.outbox.answered(id)
	c.acknowledged(t, now)
}

// newAckID draws a transmission's ack ID (or SURB ID).
func (c *Client) newAckID() ([envelope.AckIDSize]byte, error) {
	var id [envelope.AckIDSize]byte
	_, err := io.ReadFull(c.cfg.Rand, id[:])
	return id, err
}
