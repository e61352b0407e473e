package client

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/features/convey"
)

// deskRecord is a message given to the user, as intermediary, to convey
// ("desk/<id hex>").
type deskRecord struct {
	Version   int                `json:"version"`
	ID        [16]byte           `json:"id"`
	From      string             `json:"from"` // contact key
	To        string             `json:"to"`   // how the sender named the recipient
	Text      string             `json:"text"`
	Receipt   convey.ReceiptKind `json:"receipt"`
	Salt      [32]byte           `json:"salt"`
	InReplyTo [16]byte           `json:"in_reply_to,omitzero"`
	State     string             `json:"state"` // pending, passed, delivered, refused
	PassedTo  string             `json:"passed_to,omitempty"`
	Note      string             `json:"note,omitempty"`
	Received  time.Time          `json:"received"`
}

// conveyRecord is a message the user sent through an intermediary
// ("convey/<id hex>"), with its outcome.
type conveyRecord struct {
	Version int                `json:"version"`
	ID      [16]byte           `json:"id"`
	Via     string             `json:"via"` // contact key of the intermediary
	To      string             `json:"to"`
	Text    string             `json:"text"`
	Receipt convey.ReceiptKind `json:"receipt_kind"`
	Salt    [32]byte           `json:"salt"`
	State   string             `json:"state"` // sent, conveyed, refused
	Note    string             `json:"note,omitempty"`
	Outcome []byte             `json:"outcome,omitempty"` // the encoded convey.Outcome, with the receipt
	Sent    time.Time          `json:"sent"`
}

func parseID(id, what string) ([16]byte, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return [16]byte{}, fmt.Errorf("client: %q is not %s ID", id, what)
	}
	return [16]byte(raw), nil
}

// Convey sends text to the party the intermediary via knows as to, through
// via, asking for a receipt of the given kind.
func (c *Client) Convey(via, to, text string, receipt convey.ReceiptKind) (string, error) {
	return c.convey(via, to, text, receipt, [16]byte{})
}

// ReplyConveyed answers a conveyed message in the inbox, through the
// intermediary that conveyed it.
func (c *Client) ReplyConveyed(inboxID, text string, receipt convey.ReceiptKind) (string, error) {
	id, err := parseID(inboxID, "a message")
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	var rec inRecord
	err = inRecords.get(c.store, id, &rec)
	c.unlock()
	if err != nil {
		return "", err
	}
	if !rec.Conveyed {
		return "", fmt.Errorf("client: message %s was not conveyed; answer it directly", inboxID)
	}
	c.mu.Lock()
	via := c.nameOf(rec.From)
	c.unlock()
	return c.convey(via, "", text, receipt, rec.Convey)
}

func (c *Client) convey(via, to, text string, receipt convey.ReceiptKind, inReplyTo [16]byte) (string, error) {
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(via)
	if ct == nil {
		return "", fmt.Errorf("%w: %q", ErrNoContact, via)
	}
	req := &convey.Request{To: to, Text: text, Receipt: receipt, InReplyTo: inReplyTo}
	if _, err := io.ReadFull(c.cfg.Rand, req.ID[:]); err != nil {
		return "", err
	}
	if _, err := io.ReadFull(c.cfg.Rand, req.Salt[:]); err != nil {
		return "", err
	}
	raw, err := convey.Marshal(req)
	if err != nil {
		return "", err
	}
	rec := conveyRecord{Version: stateVersion, ID: req.ID, Via: ct.key, To: to, Text: text, Receipt: receipt, Salt: req.Salt, State: "sent", Sent: c.cfg.Clock.Now().UTC()}
	if err := conveyRecords.put(c.store, req.ID, rec); err != nil {
		return "", err
	}
	if _, err := c.queueControl(ct, Conveyance, raw); err != nil {
		return "", err
	}
	return hex.EncodeToString(req.ID[:]), nil
}

// DeskEntry is a message on the intermediary's desk.
type DeskEntry struct {
	ID, From, To, Text, State, PassedTo, Note string
	// ReplyTo is set when the message answers one the user conveyed: the
	// contact who sent that one.
	ReplyTo  string
	Receipt  string
	Received time.Time
}

// Desk lists the messages given to the user to convey, newest first.
func (c *Client) Desk() ([]DeskEntry, error) {
	// Reads the vault without c.mu (it is safe for concurrent use) and
	// names contacts from the view: it answers while packets are built.
	v := c.view.Load()
	recs, err := deskRecords.all(c.store)
	if err != nil {
		return nil, err
	}
	var out []DeskEntry
	for _, r := range recs {
		e := DeskEntry{ID: hex.EncodeToString(r.ID[:]), From: v.nameOf(r.From), To: r.To, Text: r.Text, State: r.State, Note: r.Note, Receipt: r.Receipt.String(), Received: r.Received}
		if r.PassedTo != "" {
			e.PassedTo = v.nameOf(r.PassedTo)
		}
		if orig, ok := c.replyTarget(r); ok {
			e.ReplyTo = v.nameOf(orig)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.After(out[j].Received) })
	return out, nil
}

// replyTarget returns, for a desk entry that answers a message the user
// conveyed, the contact who sent that message.
func (c *Client) replyTarget(r deskRecord) (string, bool) {
	if r.InReplyTo == ([16]byte{}) {
		return "", false
	}
	var orig deskRecord
	if err := deskRecords.get(c.store, r.InReplyTo, &orig); err != nil || orig.PassedTo != r.From {
		return "", false
	}
	return orig.From, true
}

// PassOn conveys a desk entry to the contact to (for an answer to a
// conveyed message, empty means back to that message's sender), showing
// the sender as fromLabel, with the user's note. When the recipient's
// client acknowledges it, the sender gets the receipt it asked for.
func (c *Client) PassOn(id, to, fromLabel, note string) error {
	did, err := parseID(id, "a desk")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	var r deskRecord
	if err := deskRecords.get(c.store, did, &r); err != nil {
		return err
	}
	if r.State != "pending" {
		return fmt.Errorf("client: desk entry %s is %s already", id, r.State)
	}
	var target *contact
	if to == "" {
		orig, ok := c.replyTarget(r)
		if !ok {
			return fmt.Errorf("client: say whom to pass desk entry %s to", id)
		}
		target = c.contacts[orig]
	} else {
		target = c.byName(to)
	}
	if target == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, to)
	}
	if target.key == r.From {
		return fmt.Errorf("client: that would pass the message back to its sender")
	}
	if fromLabel == "" {
		fromLabel = "a party I am in touch with"
	}
	raw, err := convey.Marshal(&convey.Conveyed{ID: r.ID, From: fromLabel, Note: note, Text: r.Text})
	if err != nil {
		return err
	}
	m, err := c.queueControl(target, Conveyance, raw)
	if err != nil {
		return err
	}
	m.rec.Desk = r.ID
	if err := outRecords.put(c.store, m.rec.ID, m.rec); err != nil {
		return err
	}
	r.State, r.PassedTo, r.Note = "passed", target.key, note
	c.notify()
	return deskRecords.put(c.store, r.ID, r)
}

// Refuse declines to convey a desk entry; the sender is told, with the
// note.
func (c *Client) Refuse(id, note string) error {
	did, err := parseID(id, "a desk")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	var r deskRecord
	if err := deskRecords.get(c.store, did, &r); err != nil {
		return err
	}
	if r.State != "pending" {
		return fmt.Errorf("client: desk entry %s is %s already", id, r.State)
	}
	from := c.contacts[r.From]
	if from == nil {
		return fmt.Errorf("client: the sender is no longer a contact")
	}
	raw, err := convey.Marshal(&convey.Outcome{ID: r.ID, Note: note})
	if err != nil {
		return err
	}
	if _, err := c.queueControl(from, Conveyance, raw); err != nil {
		return err
	}
	r.State, r.Note = "refused", note
	c.notify()
	return deskRecords.put(c.store, r.ID, r)
}

// delivered is called when an outgoing message is acknowledged; for a
// conveyed message it sends the original sender its outcome and receipt.
// c.mu is held.
func (c *Client) delivered(m *outgoing, now time.Time) {
	if m.rec.Desk == ([16]byte{}) {
		return
	}
	var r deskRecord
	if err := deskRecords.get(c.store, m.rec.Desk, &r); err != nil || r.State != "passed" {
		return
	}
	from := c.contacts[r.From]
	if from == nil {
		return
	}
	out := &convey.Outcome{ID: r.ID, Conveyed: true, Note: r.Note}
	if r.Receipt != convey.NoReceipt {
		to := r.To
		if to == "" {
			to = "the party you answered"
		}
		out.Receipt = convey.NewReceipt(r.Receipt, convey.Commit(r.Salt, r.Text), to, now, c.id.Signing)
	}
	raw, err := convey.Marshal(out)
	if err == nil {
		_, err = c.queueControl(from, Conveyance, raw)
	}
	if err != nil {
		c.log.Error("sending a conveyance receipt", "err", err)
		return
	}
	r.State = "delivered"
	if err := deskRecords.put(c.store, r.ID, r); err != nil {
		c.log.Error("saving a desk entry", "err", err)
	}
}

// handleConveyance handles a conveyance message from ct; c.mu is held.
func (c *Client) handleConveyance(ct *contact, body []byte, id [16]byte, now time.Time) error {
	m, err := convey.Parse(body)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *convey.Request:
		if deskRecords.exists(c.store, m.ID) {
			return nil
		}
		r := deskRecord{Version: stateVersion, ID: m.ID, From: ct.key, To: m.To, Text: m.Text, Receipt: m.Receipt, Salt: m.Salt, InReplyTo: m.InReplyTo, State: "pending", Received: now.UTC()}
		c.notify()
		return deskRecords.put(c.store, m.ID, r)
	case *convey.Conveyed:
		rec := inRecord{Version: stateVersion, ID: id, From: ct.key, Kind: Text.String(), Body: []byte(m.Text), Received: now.UTC(),
			Conveyed: true, Label: m.From, Note: m.Note, Convey: m.ID}
		if err := inRecords.put(c.store, id, rec); err != nil {
			return err
		}
		c.indexIn(rec)
		c.notify()
		return nil
	case *convey.Outcome:
		var r conveyRecord
		if err := conveyRecords.get(c.store, m.ID, &r); err != nil || r.Via != ct.key {
			return fmt.Errorf("an outcome for a message you did not send through this contact")
		}
		if r.State != "sent" {
			return nil
		}
		if m.Conveyed && m.Receipt != nil {
			if !m.Receipt.Matches(r.Text, r.Salt) || !m.Receipt.Intermediary.Equal(ct.card.SigningKey) {
				return fmt.Errorf("a receipt that names another message or another intermediary")
			}
			if r.Receipt == convey.SignedReceipt {
				if err := m.Receipt.Verify(r.Text, r.Salt, ct.card.SigningKey); err != nil {
					return fmt.Errorf("a signed receipt that does not verify: %w", err)
				}
			}
		}
		r.State = map[bool]string{true: "conveyed", false: "refused"}[m.Conveyed]
		r.Note, r.Outcome = m.Note, body
		c.notify()
		return conveyRecords.put(c.store, r.ID, r)
	}
	return nil
}

// ConveyInfo is a message the user sent through an intermediary.
type ConveyInfo struct {
	ID, Via, To, Text, State, Note string
	// ReceiptKind says which receipt was asked for, in words; Receipt is
	// the receipt itself, once it came.
	ReceiptKind string
	Receipt     *convey.Receipt
	Sent        time.Time
}

// Conveyances lists the messages the user sent through intermediaries.
func (c *Client) Conveyances() ([]ConveyInfo, error) {
	// Reads the vault without c.mu (it is safe for concurrent use) and
	// names contacts from the view: it answers while packets are built.
	v := c.view.Load()
	recs, err := conveyRecords.all(c.store)
	if err != nil {
		return nil, err
	}
	var out []ConveyInfo
	for _, r := range recs {
		info := ConveyInfo{ID: hex.EncodeToString(r.ID[:]), Via: v.nameOf(r.Via), To: r.To, Text: r.Text, State: r.State, Note: r.Note, ReceiptKind: r.Receipt.String(), Sent: r.Sent}
		if r.Outcome != nil {
			if o, err := convey.Parse(r.Outcome); err == nil {
				info.Receipt = o.(*convey.Outcome).Receipt
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sent.After(out[j].Sent) })
	return out, nil
}

// ReceiptProof is what the user can show a third party: the message, its
// salt, the receipt, and the intermediary's card (whose signing key checks
// it).
type ReceiptProof struct {
	Text    string
	Salt    [convey.SaltSize]byte
	Receipt *convey.Receipt
	Card    []byte
}

// Proof returns the proof for a conveyed message's receipt.
func (c *Client) Proof(id string) (*ReceiptProof, error) {
	cid, err := parseID(id, "a conveyance")
	if err != nil {
		return nil, err
	}
	// A read: from the vault and the view, without c.mu.
	var r conveyRecord
	if err := conveyRecords.get(c.store, cid, &r); err != nil {
		return nil, err
	}
	if r.Outcome == nil {
		return nil, fmt.Errorf("client: no receipt for %s yet (it is %s)", id, r.State)
	}
	o, err := convey.Parse(r.Outcome)
	if err != nil {
		return nil, err
	}
	rc := o.(*convey.Outcome).Receipt
	if rc == nil {
		return nil, fmt.Errorf("client: %s has no receipt (none was asked for, or it was refused)", id)
	}
	via, ok := c.view.Load().known[r.Via]
	if !ok {
		return nil, fmt.Errorf("client: the intermediary is no longer a contact")
	}
	card, err := via.card.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &ReceiptProof{Text: r.Text, Salt: r.Salt, Receipt: rc, Card: card}, nil
}
