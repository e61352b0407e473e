package client

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features/intro"
)

// introRecord is an introduction ("intro/<id hex>"), as the intermediary
// who made it or as one of the two introduced.
type introRecord struct {
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

// IntroductionInfo is an introduction as the user sees it.
type IntroductionInfo struct {
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
func (c *Client) Introduce(a, b, labelForA, labelForB, note string) (string, error) {
	c.mu.Lock()
	defer c.unlock()
	ca, cb := c.byName(a), c.byName(b)
	if ca == nil || cb == nil {
		return "", fmt.Errorf("%w: introduce needs two contacts, not %q and %q", ErrNoContact, a, b)
	}
	if ca == cb {
		return "", fmt.Errorf("client: cannot introduce %s to themselves", a)
	}
	var id [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, id[:]); err != nil {
		return "", err
	}
	rec := introRecord{Version: stateVersion, ID: id, Intermediary: true, Sides: [2]string{ca.key, cb.key},
		Accepted: map[string]bool{}, Note: note, State: "waiting", Created: c.cfg.Clock.Now().UTC()}
	msgs := make([][]byte, 2)
	for i, pair := range [][2]*contact{{ca, cb}, {cb, ca}} {
		label := []string{labelForA, labelForB}[i]
		raw, err := intro.Marshal(&intro.Introduction{ID: id, Label: label, Note: note, Card: pair[1].rec.Card})
		if err != nil {
			return "", err
		}
		msgs[i] = raw
	}
	if err := introRecords.put(c.store, id, rec); err != nil {
		return "", err
	}
	for i, ct := range []*contact{ca, cb} {
		if _, err := c.queueControl(ct, Introduction, msgs[i]); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(id[:]), nil
}

// Introductions lists the introductions, newest first.
func (c *Client) Introductions() ([]IntroductionInfo, error) {
	// Reads the vault without c.mu (it is safe for concurrent use) and
	// names contacts from the view: it answers while packets are built.
	v := c.view.Load()
	recs, err := introRecords.all(c.store)
	if err != nil {
		return nil, err
	}
	var out []IntroductionInfo
	for _, r := range recs {
		info := IntroductionInfo{ID: hex.EncodeToString(r.ID[:]), Intermediary: r.Intermediary, Label: r.Label, Note: r.Note, State: r.State, Created: r.Created}
		if r.Intermediary {
			info.Sides = [2]string{v.nameOf(r.Sides[0]), v.nameOf(r.Sides[1])}
		} else {
			info.From = v.nameOf(r.From)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (c *Client) nameOf(key string) string {
	if ct := c.contacts[key]; ct != nil {
		return ct.rec.Name
	}
	return "(a former contact)"
}

// AnswerIntroduction accepts or declines an introduction made to the user.
// The answer goes to the intermediary only; the other side learns nothing
// unless both accept.
func (c *Client) AnswerIntroduction(id string, accept bool) error {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return fmt.Errorf("client: %q is not an introduction ID", id)
	}
	c.mu.Lock()
	defer c.unlock()
	var r introRecord
	if err := introRecords.get(c.store, [16]byte(raw), &r); err != nil {
		return fmt.Errorf("client: no introduction %s: %w", id, err)
	}
	if r.Intermediary || r.State != "pending" {
		return fmt.Errorf("client: introduction %s is not waiting for your answer (it is %s)", id, r.State)
	}
	from := c.contacts[r.From]
	if from == nil {
		return fmt.Errorf("client: the one who introduced you is no longer a contact")
	}
	msg, err := intro.Marshal(&intro.Answer{ID: r.ID, Accept: accept})
	if err != nil {
		return err
	}
	r.State = map[bool]string{true: "accepted", false: "declined"}[accept]
	if err := introRecords.put(c.store, r.ID, r); err != nil {
		return err
	}
	_, err = c.queueControl(from, Introduction, msg)
	c.notify()
	return err
}

// handleIntroduction handles an introduction message from ct; c.mu is held.
func (c *Client) handleIntroduction(ct *contact, body []byte, now time.Time) error {
	m, err := intro.Parse(body)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *intro.Introduction:
		if introRecords.exists(c.store, m.ID) {
			return nil
		}
		card, err := identity.ParseCard(m.Card)
		if err != nil {
			return fmt.Errorf("an introduction with a bad card: %w", err)
		}
		if card.DHKey == [32]byte(c.id.DH.PublicKey().Bytes()) {
			return fmt.Errorf("an introduction to yourself")
		}
		rec := introRecord{Version: stateVersion, ID: m.ID, From: ct.key, Label: m.Label, Note: m.Note, Card: m.Card, State: "pending", Created: now.UTC()}
		c.notify()
		return introRecords.put(c.store, m.ID, rec)
	case *intro.Answer:
		var r introRecord
		if err := introRecords.get(c.store, m.ID, &r); err != nil || !r.Intermediary {
			return fmt.Errorf("an answer to an introduction you did not make")
		}
		if ct.key != r.Sides[0] && ct.key != r.Sides[1] {
			return fmt.Errorf("an answer from someone who was not introduced")
		}
		if _, answered := r.Accepted[ct.key]; answered || r.Done {
			return nil
		}
		if r.Accepted == nil {
			r.Accepted = map[string]bool{}
		}
		r.Accepted[ct.key] = m.Accept
		both := r.Accepted[r.Sides[0]] && r.Accepted[r.Sides[1]]
		if both {
			r.Done, r.State = true, "done"
		}
		if err := introRecords.put(c.store, r.ID, r); err != nil {
			return err
		}
		c.notify()
		if !both {
			// A refusal, or the first acceptance: nothing is said to the
			// other side, so it cannot tell a refusal from silence.
			return nil
		}
		done, err := intro.Marshal(&intro.Done{ID: r.ID})
		if err != nil {
			return err
		}
		for _, key := range r.Sides {
			if side := c.contacts[key]; side != nil {
				if _, err := c.queueControl(side, Introduction, done); err != nil {
					return err
				}
			}
		}
		return nil
	case *intro.Done:
		var r introRecord
		if err := introRecords.get(c.store, m.ID, &r); err != nil || r.Intermediary || r.From != ct.key {
			return fmt.Errorf("a completion of an introduction that was not made to you by this contact")
		}
		if r.State != "accepted" {
			return nil // declined (or done already): nothing to add
		}
		card, err := identity.ParseCard(r.Card)
		if err != nil {
			return err
		}
		if existing := c.contacts[hexKey(card.DHKey)]; existing == nil {
			if err := c.addContact(c.freeName(r.Label), card); err != nil {
				return err
			}
		}
		r.State = "done"
		c.notify()
		return introRecords.put(c.store, r.ID, r)
	}
	return nil
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
