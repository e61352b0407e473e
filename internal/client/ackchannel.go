package client

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
)

// The ack channel: how acks reach a contact whose software reads them
// (content version 6) without showing its provider when it sends.
//
// An ack sent for each fragment as it arrives shows the sender's provider
// that its user sent something: the sender's mailbox takes one more
// packet per fragment, about 1.4 s after the fragment left. Loops cannot
// hide that: a loop returns after its route's delays alone, and making
// one take longer needs a hop whose delay is not drawn like everyone's
// (corrupt mixes would then tell cover from messages). So acks are not
// sent when a fragment comes, but on the acknowledger's own schedule:
//
//   - one send slot in ackSlotShare, drawn at random (a Poisson process of
//     its own, like every stream of the schedule), is an ack slot;
//   - an ack slot sends one packet of the ack channel to one of the
//     contacts the channel is open to, round robin: an
//     envelope.KindAckBatch keyed with the session's envelope key,
//     carrying every ack ID owed to that contact (up to
//     envelope.AckBatchCapacity, 197 in the default 3,200-byte payload), or
//     none;
//   - the channel is open to a contact heard from (a session message or an
//     ack channel packet) within ackChannelSilence, and once after the
//     client connects (a probe, so that a contact online at the same time
//     hears from it and opens its channel back); two contacts online at
//     once keep each other's channels open with their empty packets.
//
// So what reaches a user's mailbox from a contact is the contact's ack
// slots, a Poisson process of the contact's rate ÷ the contacts its
// channel is open to, whether or not the user writes: counts, kinds and
// the lag after the user's own packets do not change when the user sends
// (TestProviderCannotSeeSending). What the provider still sees is when a
// channel opens — normally at a connect (the probes), else the first time
// a contact hears from the user after both came online — and when it
// closes: once per contact and time online, not per message. An ack slot with no channel open is an ordinary send slot.
//
// It costs no bandwidth (an ack slot is a send slot), a file's acks take
// one packet per ack slot instead of one per fragment, and acks come
// later: ackSlotShare send slots ÷ the contact's open channels on average,
// which the retransmission timer measures (roundTrip, srtt). A contact
// whose software reads no ack batches is acknowledged per fragment
// (acks.go), as before.
const (
	// readsAckBatches is the content version whose readers take
	// envelope.KindAckBatch.
	readsAckBatches = 6
	// ackSlotShare: one send slot in ackSlotShare is an ack slot.
	ackSlotShare = 4
	// ackChannelSilence is how long the channel to a contact stays open
	// after it was last heard from. It bounds what goes to a contact that
	// went offline: ackChannelSilence of ack slots (at the default rates,
	// at most 150 packets, against a provider's quota of 10,000), and it
	// is long enough that a contact online with many channels of its own
	// is heard from well within it.
	ackChannelSilence = 5 * time.Minute
	// maxOwedAcks bounds the ack IDs owed to one contact; beyond it new
	// fragments go unacknowledged and their senders retransmit.
	maxOwedAcks = 4096
)

// ackChannel is the state of the ack channel to one contact; c.mu's. It
// is kept in memory only: after a crash the acks owed are not sent, and
// their fragments are sent again and acknowledged again.
type ackChannel struct {
	owed  [][envelope.AckIDSize]byte
	heard time.Time // last heard from, in this run
	probe bool      // the channel's first packet of this run is not sent yet
	sent  time.Time // its last packet: the round robin's order
}

// batchesAcks reports whether ct is acknowledged through the ack channel;
// c.mu is held.
func batchesAcks(ct *contact) bool { return ct.rec.Reads >= readsAckBatches }

// probeContacts opens the ack channel once to every contact, at the
// start of a run; c.mu is held.
func (c *Client) probeContacts() {
	for _, ct := range c.contacts {
		ct.acks.probe = true
	}
}

// heardFrom notes a packet from ct under its session, which keeps the ack
// channel to ct open and resumes ct if it was held (retry.go); c.mu is
// held.
func (c *Client) heardFrom(ct *contact, now time.Time) {
	ct.acks.heard = now
	c.outbox.wake(ct, now)
}

// owe queues the ack of a transmission for ct's ack channel; c.mu is held.
func (c *Client) owe(ct *contact, id [envelope.AckIDSize]byte) error {
	if len(ct.acks.owed) >= maxOwedAcks {
		return fmt.Errorf("client: %d acks owed to %s already", maxOwedAcks, ct.rec.Name)
	}
	ct.acks.owed = append(ct.acks.owed, id)
	return nil
}

// open reports whether the ack channel to ct is open at now; c.mu is held.
func (ch *ackChannel) open(now time.Time) bool {
	return ch.probe || len(ch.owed) > 0 || (!ch.heard.IsZero() && now.Sub(ch.heard) < ackChannelSilence)
}

// nextAckChannel picks the contact whose channel packet goes in an ack
// slot: of the open channels to contacts with a keyed session, the one
// that sent least recently. nil: none is open. c.mu is held.
func (c *Client) nextAckChannel(now time.Time) *contact {
	var open []*contact
	for _, ct := range c.contacts {
		if !batchesAcks(ct) || !ct.acks.open(now) {
			continue
		}
		ct.mu.Lock()
		keyed := ct.keyed()
		ct.mu.Unlock()
		if keyed {
			open = append(open, ct)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return slices.MinFunc(open, func(a, b *contact) int {
		if d := a.acks.sent.Compare(b.acks.sent); d != 0 {
			return d
		}
		return strings.Compare(a.key, b.key)
	})
}

// planAckBatch plans the ack channel's packet to ct, with every ack ID
// owed to it that fits, and says how many it took; c.mu is held. The IDs
// it takes are not owed any more, even if the packet cannot be made:
// their fragments are sent again.
func (c *Client) planAckBatch(ct *contact, now time.Time) (b build, taken int, err error) {
	ch := &ct.acks
	ch.probe, ch.sent = false, now
	format := c.format
	n := min(len(ch.owed), envelope.AckBatchCapacity(format.Geometry().UserPayloadLength))
	contents := envelope.Contents{Kind: envelope.KindAckBatch, AckIDs: slices.Clone(ch.owed[:n])}
	ch.owed = slices.Delete(ch.owed, 0, n)
	if b, err = c.planKeyed(ct, contents); err == nil {
		c.stats.AckPacketsSent++
	}
	return b, n, err
}

// receiveAckBatch handles a packet of ct's ack channel, which opened under
// its session key; c.mu is held.
func (c *Client) receiveAckBatch(ct *contact, ids [][envelope.AckIDSize]byte, now time.Time) {
	c.stats.AckPacketsReceived++
	c.heardFrom(ct, now)
	for _, id := range ids {
		c.receiveForwardAck(ct, id, now)
	}
}
