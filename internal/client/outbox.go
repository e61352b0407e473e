package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/fragment"
	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// outgoing is a message being sent.
type outgoing struct {
	rec      outRecord
	to       *contact
	frags    [][]byte
	sent     []bool
	due      []time.Time // when each unacknowledged fragment may go (again)
	attempts []int
	// text is a text message's text, for the user to see what they sent
	// ("sent/<id hex>", kept until the message disappears or the state
	// is wiped; the body goes once delivered).
	text string
}

// transmission is a packet sent with a SURB, waiting for its ack.
type transmission struct {
	token  []byte
	to     *contact
	msg    *outgoing // nil for a hello
	index  int
	sentAt time.Time
}

func (c *Client) loadOutbox() error {
	recs, err := outRecords.all(c.store)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		to := c.contacts[rec.To]
		if to == nil {
			return fmt.Errorf("%w: message %x is to an unknown contact", ErrMalformed, rec.ID)
		}
		m := &outgoing{rec: rec, to: to}
		if rec.Kind == Text.String() {
			// States from before sent texts were kept have none.
			if text, err := sentTexts.get(c.store, rec.ID); err == nil {
				m.text = string(text)
			} else if !errors.Is(err, vault.ErrNotFound) {
				return err
			}
		}
		if rec.Status == Queued || rec.Status == Sent {
			body, err := bodies.get(c.store, rec.ID)
			if errors.Is(err, vault.ErrNotFound) {
				// Earlier releases deleted a message's
				// content before saving its last acknowledgement: a crash
				// between the two left this. Content is deleted only once
				// a message is settled, and only its delivery deleted it
				// first, so the message was delivered.
				c.log.Warn("a message's last acknowledgement was interrupted; it is marked delivered", "kind", rec.Kind)
				m.rec.Status, m.rec.Delivered = Delivered, c.cfg.Clock.Now().UTC()
				for i := range m.rec.Acked {
					m.rec.Acked[i] = true
				}
				c.startExpiry(m, c.cfg.Clock.Now())
				if err := outRecords.put(c.store, rec.ID, m.rec); err != nil {
					return err
				}
				c.out = append(c.out, m)
				c.outByID[rec.ID] = m
				continue
			}
			if err != nil {
				return err
			}
			if err := m.cut(body, c.fragmentCapacity()); err != nil {
				return err
			}
			if len(m.frags) != len(rec.Acked) {
				return fmt.Errorf("%w: message %x has %d fragments, its record %d", ErrMalformed, rec.ID, len(m.frags), len(rec.Acked))
			}
		}
		c.out = append(c.out, m)
		c.outByID[rec.ID] = m
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].rec.Created.Before(c.out[j].rec.Created) })
	return c.dropStaleContent()
}

// dropStaleContent deletes what a crash left behind: the content of a
// settled message (saved settled, not yet deleted) and the content and
// text of a message whose record was never saved (a crash while it was
// queued: the user was not told it was queued). c.mu is held.
func (c *Client) dropStaleContent() error {
	ids, err := bodies.ids(c.store)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if m := c.outByID[id]; m == nil || !m.pending() {
			if err := bodies.delete(c.store, id); err != nil {
				return err
			}
		}
	}
	if ids, err = sentTexts.ids(c.store); err != nil {
		return err
	}
	for _, id := range ids {
		if c.outByID[id] == nil {
			if err := sentTexts.delete(c.store, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// cut splits the encoded content into fragments and readies their
// schedule: every unacknowledged fragment is due now.
func (m *outgoing) cut(body []byte, capacity int) error {
	frags, err := fragment.Split(fragment.ID(m.rec.ID), body, capacity)
	if err != nil {
		return err
	}
	m.frags = frags
	m.sent = make([]bool, len(frags))
	m.due = make([]time.Time, len(frags))
	m.attempts = make([]int, len(frags))
	return nil
}

// fragmentCapacity is the largest fragment a packet carries: a Sphinx
// payload, less the envelope with its SURB, the session message's header
// and overhead, and the record type byte.
func (c *Client) fragmentCapacity() int {
	g := sphinx.DefaultGeometry
	if c.doc != nil {
		g = c.doc.Parameters.Geometry
	}
	return fragmentCapacity(g)
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
	Status   Status // outgoing only
	Reason   string // why it failed
	Time     time.Time
	// Acked and Fragments show an outgoing message's progress.
	Acked, Fragments int
	// Conveyed is set for a message an intermediary (Contact) passed on:
	// Label is how it names the sender, Note its note.
	Conveyed    bool
	Label, Note string
}

// Send queues content for the contact called to and returns its ID.
func (c *Client) Send(to string, content Content) (string, error) {
	if content.Kind != Text && content.Kind != File {
		return "", fmt.Errorf("client: only texts and files are sent this way, not %v", content.Kind)
	}
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(to)
	if ct == nil {
		return "", fmt.Errorf("%w: %q", ErrNoContact, to)
	}
	m, err := c.queue(ct, content, [16]byte{})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(m.rec.ID[:]), nil
}

// queue queues content for the contact, with the conversation's time to
// live; c.mu is held.
func (c *Client) queue(ct *contact, content Content, ref [16]byte) (*outgoing, error) {
	content.TTL = ct.rec.Expiry
	body, err := content.marshal()
	if err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, id[:]); err != nil {
		return nil, err
	}
	now := c.cfg.Clock.Now().UTC()
	m := &outgoing{to: ct, rec: outRecord{
		Version: StateVersion, ID: id, To: ct.key, Kind: content.Kind.String(), Name: content.Name,
		Size: len(content.Body), Created: now, Status: Queued,
	}}
	m.rec.TTL, m.rec.Ref = content.TTL, ref
	if err := m.cut(body, c.fragmentCapacity()); err != nil {
		return nil, err
	}
	m.rec.Acked = make([]bool, len(m.frags))
	if err := bodies.put(c.store, id, body); err != nil {
		return nil, err
	}
	if content.Kind == Text {
		if err := sentTexts.put(c.store, id, content.Body); err != nil {
			return nil, err
		}
		m.text = string(content.Body)
	}
	if err := outRecords.put(c.store, id, m.rec); err != nil {
		return nil, err
	}
	c.out = append(c.out, m)
	c.outByID[id] = m
	c.notify()
	return m, nil
}

// Outbox lists the sent messages, oldest first.
func (c *Client) Outbox() []MessageInfo { return c.view.Load().outbox }
