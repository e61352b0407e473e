package intro

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// Feature is the client side of introductions: the user as intermediary
// (Introduce) and as one of the two introduced (AnswerIntroduction), and
// the messages between them.
type Feature struct {
	c *client.Client
}

// record is an introduction ("intro/<id hex>"), as the intermediary who
// made it or as one of the two introduced.
type record struct {
	Version int      `json:"version"`
	ID      [16]byte `json:"id"`
	// Intermediary: the two sides (contact keys), and what each answered.
	Intermediary bool            `json:"intermediary,omitempty"`
	Sides        [2]string       `json:"sides,omitzero"`
	Accepted     map[string]bool `json:"accepted,omitempty"`
	Done         bool            `json:"done,omitempty"`
	// Introduced: who introduced us (contact key), the other side's card,
	// the label it is shown under, the note, and our answer.
	From    string    `json:"from,omitempty"`
	Label   string    `json:"label,omitempty"`
	Note    string    `json:"note"`
	Card    []byte    `json:"card,omitempty"`
	State   string    `json:"state"` // pending, accepted, declined, done (introduced); waiting, done (intermediary)
	Created time.Time `json:"created"`
}

var records = client.NewTable[record]("intro/")

// New registers the feature with the client.
func New(c *client.Client) (*Feature, error) {
	f := &Feature{c: c}
	return f, c.Register(f)
}

// Kinds are the content kinds the feature handles.
func (f *Feature) Kinds() []client.ContentKind { return []client.ContentKind{client.Introduction} }

// Info is an introduction as the user sees it.
type Info struct {
	ID string
	// Intermediary is set for introductions the user made; Sides names
	// the two contacts introduced.
	Intermediary bool
	Sides        [2]string
	// From is who introduced the user; Label how the other side is shown;
	// Note the intermediary's note.
	From, Label, Note string
	State             string
	Created           time.Time
}

// Introduce introduces the contacts a and b to each other: a gets b's card
// shown as labelForA, b gets a's card shown as labelForB, both with the
// note. Only if both accept do they become contacts.
func (f *Feature) Introduce(a, b, labelForA, labelForB, note string) (string, error) {
	var id [16]byte
	err := f.c.Do(func(tx *client.Tx) error {
		ca, errA := tx.Contact(a)
		cb, errB := tx.Contact(b)
		if errA != nil || errB != nil {
			return fmt.Errorf("%w: introduce needs two contacts, not %q and %q", client.ErrNoContact, a, b)
		}
		if ca.Key == cb.Key {
			return fmt.Errorf("intro: cannot introduce %s to themselves", a)
		}
		if _, err := io.ReadFull(tx.Rand(), id[:]); err != nil {
			return err
		}
		rec := record{Version: client.StateVersion, ID: id, Intermediary: true, Sides: [2]string{ca.Key, cb.Key},
			Accepted: map[string]bool{}, Note: note, State: "waiting", Created: tx.Now().UTC()}
		msgs := make([][]byte, 2)
		for i, pair := range [][2]client.Contact{{ca, cb}, {cb, ca}} {
			card, err := pair[1].Card.MarshalBinary()
			if err != nil {
				return err
			}
			if msgs[i], err = Marshal(&Introduction{ID: id, Label: []string{labelForA, labelForB}[i], Note: note, Card: card}); err != nil {
				return err
			}
		}
		if err := records.Put(tx.Store(), id, rec); err != nil {
			return err
		}
		for i, ct := range []client.Contact{ca, cb} {
			if err := tx.Queue(ct, client.Introduction, msgs[i], client.Queuing{About: "introduction to " + strconv.Quote([]string{labelForA, labelForB}[i])}); err != nil {
				return err
			}
		}
		return nil
	})
	return hex.EncodeToString(id[:]), err
}

// Introductions lists the introductions, newest first. It reads the vault
// and the client's view without the client's lock.
func (f *Feature) Introductions() ([]Info, error) {
	recs, err := records.All(f.c.Store())
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, r := range recs {
		info := Info{ID: hex.EncodeToString(r.ID[:]), Intermediary: r.Intermediary, Label: r.Label, Note: r.Note, State: r.State, Created: r.Created}
		if r.Intermediary {
			info.Sides = [2]string{f.c.ContactName(r.Sides[0]), f.c.ContactName(r.Sides[1])}
		} else {
			info.From = f.c.ContactName(r.From)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Answer accepts or declines an introduction made to the user. The answer
// goes to the intermediary only; the other side learns nothing unless both
// accept.
func (f *Feature) Answer(id string, accept bool) error {
	rid, err := client.ParseID(id, "an introduction")
	if err != nil {
		return err
	}
	return f.c.Do(func(tx *client.Tx) error {
		r, err := records.Get(tx.Store(), rid)
		if err != nil {
			return fmt.Errorf("intro: no introduction %s: %w", id, err)
		}
		if r.Intermediary || r.State != "pending" {
			return fmt.Errorf("intro: introduction %s is not waiting for your answer (it is %s)", id, r.State)
		}
		from, ok := tx.ContactByKey(r.From)
		if !ok {
			return fmt.Errorf("intro: the one who introduced you is no longer a contact")
		}
		msg, err := Marshal(&Answer{ID: r.ID, Accept: accept})
		if err != nil {
			return err
		}
		r.State = map[bool]string{true: "accepted", false: "declined"}[accept]
		if err := records.Put(tx.Store(), r.ID, r); err != nil {
			return err
		}
		tx.Changed()
		return tx.Queue(from, client.Introduction, msg, client.Queuing{About: "introduction " + r.State + ": " + strconv.Quote(r.Label)})
	})
}

// Receive handles an introduction message from a contact.
func (f *Feature) Receive(tx *client.Tx, from client.Contact, _ client.ContentKind, body []byte, _ [16]byte) error {
	m, err := Parse(body)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *Introduction:
		return f.introduced(tx, from, m)
	case *Answer:
		return f.answered(tx, from, m)
	case *Done:
		return f.done(tx, from, m)
	}
	return nil
}

// introduced keeps an introduction made to the user, for an answer.
func (f *Feature) introduced(tx *client.Tx, from client.Contact, m *Introduction) error {
	if records.Exists(tx.Store(), m.ID) {
		return nil
	}
	card, err := identity.ParseCard(m.Card)
	if err != nil {
		return fmt.Errorf("an introduction with a bad card: %w", err)
	}
	if card.DHKey == tx.Self().DHKey {
		return fmt.Errorf("an introduction to yourself")
	}
	rec := record{Version: client.StateVersion, ID: m.ID, From: from.Key, Label: m.Label, Note: m.Note, Card: m.Card, State: "pending", Created: tx.Now().UTC()}
	tx.Changed()
	return records.Put(tx.Store(), m.ID, rec)
}

// answered records a side's answer to an introduction the user made, and
// tells both once both accepted.
func (f *Feature) answered(tx *client.Tx, from client.Contact, m *Answer) error {
	r, err := records.Get(tx.Store(), m.ID)
	if err != nil || !r.Intermediary {
		return fmt.Errorf("an answer to an introduction you did not make")
	}
	if from.Key != r.Sides[0] && from.Key != r.Sides[1] {
		return fmt.Errorf("an answer from someone who was not introduced")
	}
	if _, answered := r.Accepted[from.Key]; answered || r.Done {
		return nil
	}
	if r.Accepted == nil {
		r.Accepted = map[string]bool{}
	}
	r.Accepted[from.Key] = m.Accept
	both := r.Accepted[r.Sides[0]] && r.Accepted[r.Sides[1]]
	if both {
		r.Done, r.State = true, "done"
	}
	if err := records.Put(tx.Store(), r.ID, r); err != nil {
		return err
	}
	tx.Changed()
	if !both {
		// A refusal, or the first acceptance: nothing is said to the
		// other side, so it cannot tell a refusal from silence.
		return nil
	}
	done, err := Marshal(&Done{ID: r.ID})
	if err != nil {
		return err
	}
	for _, key := range r.Sides {
		if side, ok := tx.ContactByKey(key); ok {
			if err := tx.Queue(side, client.Introduction, done, client.Queuing{About: "introduction complete: both accepted"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// done makes the other side a contact, under its label, once both
// accepted.
func (f *Feature) done(tx *client.Tx, from client.Contact, m *Done) error {
	r, err := records.Get(tx.Store(), m.ID)
	if err != nil || r.Intermediary || r.From != from.Key {
		return fmt.Errorf("a completion of an introduction that was not made to you by this contact")
	}
	if r.State != "accepted" {
		return nil // declined (or done already): nothing to add
	}
	card, err := identity.ParseCard(r.Card)
	if err != nil {
		return err
	}
	if _, known := tx.ContactByKey(hex.EncodeToString(card.DHKey[:])); !known {
		if err := tx.AddContact(r.Label, card); err != nil {
			return err
		}
	}
	r.State = "done"
	tx.Changed()
	return records.Put(tx.Store(), r.ID, r)
}
