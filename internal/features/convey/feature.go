package convey

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// Feature is the client side of conveyed mode: the user as sender
// (Convey, Reply, their receipts) and as intermediary (the desk: desk.go).
type Feature struct {
	c *client.Client
}

// sentRecord is a message the user sent through an intermediary
// ("convey/<id hex>"), with its outcome.
type sentRecord struct {
	Version int         `json:"version"`
	ID      [16]byte    `json:"id"`
	Via     string      `json:"via"` // contact key of the intermediary
	To      string      `json:"to"`
	Text    string      `json:"text"`
	Receipt ReceiptKind `json:"receipt_kind"`
	Salt    [32]byte    `json:"salt"`
	State   string      `json:"state"` // sent, conveyed, refused
	Note    string      `json:"note,omitempty"`
	Outcome []byte      `json:"outcome,omitempty"` // the encoded Outcome, with the receipt
	Sent    time.Time   `json:"sent"`
}

var sent = client.NewTable[sentRecord]("convey/")

// New registers the feature with the client.
func New(c *client.Client) (*Feature, error) {
	f := &Feature{c: c}
	return f, c.Register(f)
}

// Kinds are the content kinds the feature handles.
func (f *Feature) Kinds() []client.ContentKind { return []client.ContentKind{client.Conveyance} }

// Convey sends text to the party the intermediary via knows as to, through
// via, asking for a receipt of the given kind.
func (f *Feature) Convey(via, to, text string, receipt ReceiptKind) (string, error) {
	var id [16]byte
	err := f.c.Do(func(tx *client.Tx) error {
		ct, err := tx.Contact(via)
		if err != nil {
			return err
		}
		id, err = f.send(tx, ct, to, text, receipt, [16]byte{})
		return err
	})
	return hex.EncodeToString(id[:]), err
}

// Reply answers a conveyed message in the inbox, through the intermediary
// that conveyed it.
func (f *Feature) Reply(inboxID, text string, receipt ReceiptKind) (string, error) {
	mid, err := client.ParseID(inboxID, "a message")
	if err != nil {
		return "", err
	}
	var id [16]byte
	err = f.c.Do(func(tx *client.Tx) error {
		m, err := tx.Received(mid)
		if err != nil {
			return err
		}
		if !m.Conveyed {
			return fmt.Errorf("convey: message %s was not conveyed; answer it directly", inboxID)
		}
		via, ok := tx.ContactByKey(m.From)
		if !ok {
			return fmt.Errorf("convey: the intermediary of message %s is no longer a contact", inboxID)
		}
		id, err = f.send(tx, via, "", text, receipt, m.Convey)
		return err
	})
	return hex.EncodeToString(id[:]), err
}

// send gives a message to the intermediary via.
func (f *Feature) send(tx *client.Tx, via client.Contact, to, text string, receipt ReceiptKind, inReplyTo [16]byte) ([16]byte, error) {
	req := &Request{To: to, Text: text, Receipt: receipt, InReplyTo: inReplyTo}
	if _, err := io.ReadFull(tx.Rand(), req.ID[:]); err != nil {
		return req.ID, err
	}
	if _, err := io.ReadFull(tx.Rand(), req.Salt[:]); err != nil {
		return req.ID, err
	}
	raw, err := Marshal(req)
	if err != nil {
		return req.ID, err
	}
	rec := sentRecord{Version: client.StateVersion, ID: req.ID, Via: via.Key, To: to, Text: text, Receipt: receipt, Salt: req.Salt, State: "sent", Sent: tx.Now().UTC()}
	if err := sent.Put(tx.Store(), req.ID, rec); err != nil {
		return req.ID, err
	}
	about := "to convey: " + client.Excerpt(text)
	if to != "" {
		about = "to convey to " + strconv.Quote(to) + ": " + client.Excerpt(text)
	}
	return req.ID, tx.Queue(via, client.Conveyance, raw, client.Queuing{About: about})
}

// Receive handles a conveyance message from a contact: a request to the
// user as intermediary, a conveyed message, or an outcome of one the user
// sent.
func (f *Feature) Receive(tx *client.Tx, from client.Contact, _ client.ContentKind, body []byte, id [16]byte) error {
	m, err := Parse(body)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *Request:
		return f.requested(tx, from, m)
	case *Conveyed:
		return tx.DeliverConveyed(from, id, m.Text, client.Conveyed{Label: m.From, Note: m.Note, ID: m.ID})
	case *Outcome:
		return f.outcome(tx, from, m, body)
	}
	return nil
}

// outcome records what the intermediary did with a message the user sent,
// with its receipt.
func (f *Feature) outcome(tx *client.Tx, from client.Contact, m *Outcome, raw []byte) error {
	r, err := sent.Get(tx.Store(), m.ID)
	if err != nil || r.Via != from.Key {
		return fmt.Errorf("an outcome for a message you did not send through this contact")
	}
	if r.State != "sent" {
		return nil
	}
	if m.Conveyed && m.Receipt != nil {
		if !m.Receipt.Matches(r.Text, r.Salt) || !m.Receipt.Intermediary.Equal(from.Card.SigningKey) {
			return fmt.Errorf("a receipt that names another message or another intermediary")
		}
		if r.Receipt == SignedReceipt {
			if err := m.Receipt.Verify(r.Text, r.Salt, from.Card.SigningKey); err != nil {
				return fmt.Errorf("a signed receipt that does not verify: %w", err)
			}
		}
	}
	r.State = map[bool]string{true: "conveyed", false: "refused"}[m.Conveyed]
	r.Note, r.Outcome = m.Note, raw
	tx.Changed()
	return sent.Put(tx.Store(), r.ID, r)
}

// Info is a message the user sent through an intermediary.
type Info struct {
	ID, Via, To, Text, State, Note string
	// ReceiptKind says which receipt was asked for, in words; Receipt is
	// the receipt itself, once it came.
	ReceiptKind string
	Receipt     *Receipt
	Sent        time.Time
}

// Conveyances lists the messages the user sent through intermediaries,
// newest first. It reads without the client's lock.
func (f *Feature) Conveyances() ([]Info, error) {
	recs, err := sent.All(f.c.Store())
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, r := range recs {
		info := Info{ID: hex.EncodeToString(r.ID[:]), Via: f.c.ContactName(r.Via), To: r.To, Text: r.Text, State: r.State, Note: r.Note, ReceiptKind: r.Receipt.String(), Sent: r.Sent}
		if r.Outcome != nil {
			if o, err := Parse(r.Outcome); err == nil {
				info.Receipt = o.(*Outcome).Receipt
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sent.After(out[j].Sent) })
	return out, nil
}

// Proof is what the user can show a third party: the message, its salt,
// the receipt, and the intermediary's card (whose signing key checks it).
type Proof struct {
	Text    string
	Salt    [SaltSize]byte
	Receipt *Receipt
	Card    []byte
}

// Proof returns the proof for a conveyed message's receipt. It reads
// without the client's lock.
func (f *Feature) Proof(id string) (*Proof, error) {
	cid, err := client.ParseID(id, "a conveyance")
	if err != nil {
		return nil, err
	}
	r, err := sent.Get(f.c.Store(), cid)
	if err != nil {
		return nil, err
	}
	if r.Outcome == nil {
		return nil, fmt.Errorf("convey: no receipt for %s yet (it is %s)", id, r.State)
	}
	o, err := Parse(r.Outcome)
	if err != nil {
		return nil, err
	}
	rc := o.(*Outcome).Receipt
	if rc == nil {
		return nil, fmt.Errorf("convey: %s has no receipt (none was asked for, or it was refused)", id)
	}
	card, ok := f.c.ContactCard(r.Via)
	if !ok {
		return nil, fmt.Errorf("convey: the intermediary is no longer a contact")
	}
	raw, err := card.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &Proof{Text: r.Text, Salt: r.Salt, Receipt: rc, Card: raw}, nil
}
