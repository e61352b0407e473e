package convey

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// deskRecord is a message given to the user, as intermediary, to convey
// ("desk/<id hex>").
type deskRecord struct {
	Version   int         `json:"version"`
	ID        [16]byte    `json:"id"`
	From      string      `json:"from"` // contact key
	To        string      `json:"to"`   // how the sender named the recipient
	Text      string      `json:"text"`
	Receipt   ReceiptKind `json:"receipt"`
	Salt      [32]byte    `json:"salt"`
	InReplyTo [16]byte    `json:"in_reply_to,omitzero"`
	State     string      `json:"state"` // pending, passed, delivered, refused
	PassedTo  string      `json:"passed_to,omitempty"`
	Note      string      `json:"note,omitempty"`
	Received  time.Time   `json:"received"`
}

var desk = client.NewTable[deskRecord]("desk/")

// DeskEntry is a message on the intermediary's desk.
type DeskEntry struct {
	ID, From, To, Text, State, PassedTo, Note string
	// ReplyTo is set when the message answers one the user conveyed: the
	// contact who sent that one.
	ReplyTo  string
	Receipt  string
	Received time.Time
}

// requested puts a message given to the user to convey on the desk.
func (f *Feature) requested(tx *client.Tx, from client.Contact, m *Request) error {
	if desk.Exists(tx.Store(), m.ID) {
		return nil
	}
	r := deskRecord{Version: client.StateVersion, ID: m.ID, From: from.Key, To: m.To, Text: m.Text, Receipt: m.Receipt, Salt: m.Salt, InReplyTo: m.InReplyTo, State: "pending", Received: tx.Now().UTC()}
	tx.Changed()
	return desk.Put(tx.Store(), m.ID, r)
}

// Desk lists the messages given to the user to convey, newest first. It
// reads without the client's lock.
func (f *Feature) Desk() ([]DeskEntry, error) {
	s := f.c.Store()
	recs, err := desk.All(s)
	if err != nil {
		return nil, err
	}
	var out []DeskEntry
	for _, r := range recs {
		e := DeskEntry{ID: hex.EncodeToString(r.ID[:]), From: f.c.ContactName(r.From), To: r.To, Text: r.Text, State: r.State, Note: r.Note, Receipt: r.Receipt.String(), Received: r.Received}
		if r.PassedTo != "" {
			e.PassedTo = f.c.ContactName(r.PassedTo)
		}
		if orig, ok := replyTarget(s, r); ok {
			e.ReplyTo = f.c.ContactName(orig)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.After(out[j].Received) })
	return out, nil
}

// replyTarget returns, for a desk entry that answers a message the user
// conveyed, the contact who sent that message.
func replyTarget(s client.Store, r deskRecord) (string, bool) {
	if r.InReplyTo == ([16]byte{}) {
		return "", false
	}
	orig, err := desk.Get(s, r.InReplyTo)
	if err != nil || orig.PassedTo != r.From {
		return "", false
	}
	return orig.From, true
}

// PassOn conveys a desk entry to the contact to (for an answer to a
// conveyed message, empty means back to that message's sender), showing
// the sender as fromLabel, with the user's note. When the recipient's
// client acknowledges it, the sender gets the receipt it asked for.
func (f *Feature) PassOn(id, to, fromLabel, note string) error {
	did, err := client.ParseID(id, "a desk")
	if err != nil {
		return err
	}
	return f.c.Do(func(tx *client.Tx) error {
		r, err := desk.Get(tx.Store(), did)
		if err != nil {
			return err
		}
		if r.State != "pending" {
			return fmt.Errorf("convey: desk entry %s is %s already", id, r.State)
		}
		target, err := passTarget(tx, r, id, to)
		if err != nil {
			return err
		}
		if fromLabel == "" {
			fromLabel = "a party I am in touch with"
		}
		raw, err := Marshal(&Conveyed{ID: r.ID, From: fromLabel, Note: note, Text: r.Text})
		if err != nil {
			return err
		}
		// The reference brings the delivery back to Delivered.
		if err := tx.Queue(target, client.Conveyance, raw, client.Queuing{Ref: r.ID, About: "conveyed message, passed on from " + strconv.Quote(fromLabel) + ": " + client.Excerpt(r.Text)}); err != nil {
			return err
		}
		r.State, r.PassedTo, r.Note = "passed", target.Key, note
		tx.Changed()
		return desk.Put(tx.Store(), r.ID, r)
	})
}

// passTarget is whom a desk entry goes to: the contact named to, or for an
// answer with no one named, the sender of the message it answers.
func passTarget(tx *client.Tx, r deskRecord, id, to string) (client.Contact, error) {
	var target client.Contact
	if to == "" {
		orig, ok := replyTarget(tx.Store(), r)
		if !ok {
			return target, fmt.Errorf("convey: say whom to pass desk entry %s to", id)
		}
		if target, ok = tx.ContactByKey(orig); !ok {
			return target, fmt.Errorf("%w: the sender of the message it answers", client.ErrNoContact)
		}
	} else {
		var err error
		if target, err = tx.Contact(to); err != nil {
			return target, err
		}
	}
	if target.Key == r.From {
		return target, fmt.Errorf("convey: that would pass the message back to its sender")
	}
	return target, nil
}

// Refuse declines to convey a desk entry; the sender is told, with the
// note.
func (f *Feature) Refuse(id, note string) error {
	did, err := client.ParseID(id, "a desk")
	if err != nil {
		return err
	}
	return f.c.Do(func(tx *client.Tx) error {
		r, err := desk.Get(tx.Store(), did)
		if err != nil {
			return err
		}
		if r.State != "pending" {
			return fmt.Errorf("convey: desk entry %s is %s already", id, r.State)
		}
		from, ok := tx.ContactByKey(r.From)
		if !ok {
			return fmt.Errorf("convey: the sender is no longer a contact")
		}
		raw, err := Marshal(&Outcome{ID: r.ID, Note: note})
		if err != nil {
			return err
		}
		if err := tx.Queue(from, client.Conveyance, raw, client.Queuing{About: "refusal to convey " + client.Excerpt(r.Text), Urgent: true}); err != nil {
			return err
		}
		r.State, r.Note = "refused", note
		tx.Changed()
		return desk.Put(tx.Store(), r.ID, r)
	})
}

// Delivered is told that a conveyed message the user passed on (ref: its
// desk entry) was acknowledged by its recipient: the original sender gets
// its outcome, with the receipt it asked for.
func (f *Feature) Delivered(tx *client.Tx, _ client.Contact, ref [16]byte) {
	r, err := desk.Get(tx.Store(), ref)
	if err != nil || r.State != "passed" {
		return
	}
	from, ok := tx.ContactByKey(r.From)
	if !ok {
		return
	}
	out := &Outcome{ID: r.ID, Conveyed: true, Note: r.Note}
	if r.Receipt != NoReceipt {
		to := r.To
		if to == "" {
			to = "the party you answered"
		}
		out.Receipt = NewReceipt(r.Receipt, Commit(r.Salt, r.Text), to, tx.Now(), tx.SigningKey())
	}
	raw, err := Marshal(out)
	if err == nil {
		err = tx.Queue(from, client.Conveyance, raw, client.Queuing{About: "conveyance receipt for " + client.Excerpt(r.Text), Urgent: true})
	}
	if err != nil {
		tx.Log().Error("sending a conveyance receipt", "err", err)
		return
	}
	r.State = "delivered"
	if err := desk.Put(tx.Store(), r.ID, r); err != nil {
		tx.Log().Error("saving a desk entry", "err", err)
	}
}
