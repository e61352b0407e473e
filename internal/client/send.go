package client

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// fragmentCapacity is the largest fragment a packet carries: a Sphinx
// payload, less the envelope with its SURB, the session message's header
// and overhead, and the record type byte. c.mu is held.
func (c *Client) fragmentCapacity() int {
	return fragmentCapacity(c.geometry())
}

// legacyGeometry is the packet geometry of every network of the previous
// release, whose bootstrap files do not name one.
var legacyGeometry = sphinx.Geometry{MaxHops: 5, UserPayloadLength: 2048}

// geometry is the network's packet geometry: the document's once held,
// else the bootstrap file's, else legacyGeometry. c.mu is held.
func (c *Client) geometry() sphinx.Geometry {
	switch {
	case c.doc != nil:
		return c.doc.Parameters.Geometry
	case c.profile.Network.Geometry != (sphinx.Geometry{}):
		return c.profile.Network.Geometry
	}
	return legacyGeometry
}

func fragmentCapacity(g sphinx.Geometry) int {
	return envelopeSessionRoom(g, 0) - session.EncryptedHeaderSize - session.SealOverhead - 1
}

// MessageInfo is a message as the user sees it.
type MessageInfo struct {
	ID       string
	Contact  string
	Incoming bool
	Kind     string
	Name     string
	Size     int
	Text     string // for a text
	// About says what a feature's outgoing message is ("interest check:
	// …"), as the feature that queued it put it.
	About  string
	Status Status // outgoing only
	Reason string // why it failed
	// Time is when an outgoing message was queued, or an incoming one
	// arrived; Sent, for an incoming one, when its sender queued it, by
	// the sender's clock (zero from older software): the sender's order.
	Time, Sent time.Time
	// Acked and Fragments show an outgoing message's progress; Attempts
	// is the most times one of its unacknowledged fragments was sent
	// (since the client started), and NextAttempt when one goes again if
	// still unacknowledged (zero: not scheduled, or in the next send slots).
	Acked, Fragments, Attempts int
	NextAttempt                time.Time
	// Deadline is when an outgoing message on its way fails if it is not
	// acknowledged by then.
	Deadline time.Time
	// Conveyed is set for a message an intermediary (Contact) passed on:
	// Label is how it names the sender, Note its note.
	Conveyed    bool
	Label, Note string
	// DraftedBy and ApprovedBy name the officers who drafted an outgoing
	// message and approved it (under dual control).
	DraftedBy, ApprovedBy string
}

func hexID(id [16]byte) string { return hex.EncodeToString(id[:]) }

// Send queues content for the contact called to and returns its ID. The
// message is stored under the outbox's lock alone: the schedule goes on
// meanwhile, and the schedule's packets do not hold the message up.
func (c *Client) Send(to string, content Content) (string, error) {
	return c.SendWithin(to, content, 0)
}

// SendWithin is Send with the message's own time budget: it fails if it is
// not acknowledged within budget (zero: the contact's budget, or the
// client's).
func (c *Client) SendWithin(to string, content Content, budget time.Duration) (string, error) {
	return c.SendBy(to, content, budget, "", "")
}

// SendBy is SendWithin noting which officer drafted the message and which
// approved it (empty: none needed to), for the lists of sent messages.
func (c *Client) SendBy(to string, content Content, budget time.Duration, draftedBy, approvedBy string) (string, error) {
	if budget < 0 {
		return "", fmt.Errorf("client: a time budget of %v", budget)
	}
	if content.Kind != Text && content.Kind != File {
		return "", fmt.Errorf("client: only texts and files are sent this way, not %v", content.Kind)
	}
	c.mu.Lock()
	ct := c.byName(to)
	if ct == nil {
		c.unlock()
		return "", fmt.Errorf("%w: %q", ErrNoContact, to)
	}
	if err := c.begin(); err != nil {
		c.unlock()
		return "", err
	}
	content.TTL = ct.rec.Expiry
	q := queuing{Queuing: Queuing{DraftedBy: draftedBy, ApprovedBy: approvedBy},
		capacity: c.fragmentCapacity(), version: writeVersion(ct), budget: cmp.Or(budget, ct.rec.TimeBudget)}
	err := c.announce(ct)
	c.unlock()
	if err != nil {
		c.inflight.Done()
		return "", err
	}
	m, err := c.enqueue(ct, content, q)
	c.inflight.Done()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.notify()
	c.unlock()
	return hexID(m.rec.ID), nil
}

// queue queues a feature's content for the contact, with the
// conversation's time to live; c.mu is held (a feature's Tx).
func (c *Client) queue(ct *contact, content Content, fq Queuing) (*outgoing, error) {
	content.TTL = ct.rec.Expiry
	if err := c.announce(ct); err != nil {
		return nil, err
	}
	m, err := c.enqueue(ct, content, queuing{Queuing: fq, capacity: c.fragmentCapacity(), version: writeVersion(ct), budget: ct.rec.TimeBudget})
	if err != nil {
		return nil, err
	}
	c.notify()
	return m, nil
}

// queuing says how a message is queued: as its feature asked, cut to the
// fragments' capacity, in the content version the contact reads, with its
// time budget (zero: the client's).
type queuing struct {
	Queuing
	capacity int
	version  int
	budget   time.Duration
}

// enqueue makes the message of content, cut to capacity, and stores it in
// the outbox.
func (c *Client) enqueue(ct *contact, content Content, q queuing) (*outgoing, error) {
	now := c.cfg.Clock.Now()
	content.Sent = sentAt(now)
	body, err := content.marshal(q.version)
	if err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, id[:]); err != nil {
		return nil, err
	}
	m := &outgoing{to: ct, rec: outRecord{
		Version: StateVersion, ID: id, To: ct.key, Kind: content.Kind.String(), Name: content.Name,
		Size: len(content.Body), Created: now.UTC(), Status: Queued, TTL: content.TTL, Ref: q.Ref, About: q.About, Urgent: q.Urgent,
		Deadline: now.UTC().Add(cmp.Or(q.budget, c.cfg.TimeBudget)), DraftedBy: q.DraftedBy, ApprovedBy: q.ApprovedBy,
	}}
	if err := m.cut(body, q.capacity); err != nil {
		return nil, err
	}
	m.rec.Acked = make([]bool, len(m.frags))
	if content.Kind == Text {
		m.text = string(content.Body)
	}
	if err := c.outbox.add(m, body); err != nil {
		return nil, err
	}
	return m, nil
}

// Outbox lists the sent messages, oldest first.
func (c *Client) Outbox() []MessageInfo { return c.view.Load().outbox }
