package interest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/features/smp"
)

// Feature is the client side of mutual interest checks: asking, answering,
// the protocol's steps as messages arrive and deadlines pass.
type Feature struct {
	c         *client.Client
	maxPerDay int
	// checks are the checks under way, by ID: their protocol state is in
	// memory only (a check interrupted by a restart ends as "no match", as
	// an abort does). Touched only in the client's Tx.
	checks map[[16]byte]*Check
}

// record is a mutual interest check ("check/<id hex>").
type record struct {
	Version  int       `json:"version"`
	ID       [16]byte  `json:"id"`
	Peer     string    `json:"peer"`
	Role     Role      `json:"role"`
	Question string    `json:"question"`
	Deadline time.Time `json:"deadline"`
	Answer   Answer    `json:"answer"`
	Result   Result    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
	Message1 []byte    `json:"message1,omitempty"`
	Sent2    bool      `json:"sent2,omitempty"`
	Created  time.Time `json:"created"`
	// Limited: the contact asked more often than the user allows; the
	// check is answered "no" whatever the user says.
	Limited bool `json:"limited,omitempty"`
}

var records = client.NewTable[record]("check/")

// DefaultMaxPerDay is how many checks a contact may ask the user in a day
// unless the user says otherwise; beyond it, checks are answered "no",
// which looks like any other answer.
const DefaultMaxPerDay = 3

// New registers the feature with the client and brings the pending checks
// into memory; maxPerDay 0 takes DefaultMaxPerDay.
func New(c *client.Client, maxPerDay int) (*Feature, error) {
	if maxPerDay == 0 {
		maxPerDay = DefaultMaxPerDay
	}
	f := &Feature{c: c, maxPerDay: maxPerDay, checks: map[[16]byte]*Check{}}
	if err := c.Register(f); err != nil {
		return nil, err
	}
	return f, c.Do(f.load)
}

// Kinds are the content kinds the feature handles.
func (f *Feature) Kinds() []client.ContentKind { return []client.ContentKind{client.InterestCheck} }

// load brings the pending checks into memory.
func (f *Feature) load(tx *client.Tx) error {
	recs, err := records.All(tx.Store())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Result == Pending {
			if _, _, err := f.check(tx, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Info is a mutual interest check as the user sees it.
type Info struct {
	ID, Contact, Question string
	Asked                 bool // the user asked it
	Deadline              time.Time
	Answer                string
	Result                string
	Reason                string
	Limited               bool
}

// context is the check's SMP context: the session's ID, both identity
// keys, the check ID and the question.
func context(tx *client.Tx, ct client.Contact, id [16]byte, question string) ([]byte, error) {
	if ct.Session == nil {
		return nil, fmt.Errorf("interest: no session with %s yet: send them a message first", ct.Name)
	}
	self := tx.Self().DHKey
	return smp.Context(ct.Session, self[:], ct.Card.DHKey[:], id[:], question), nil
}

// Ask starts a mutual interest check with the contact: question, the
// user's own answer (asking is answering), and how long the contact has to
// answer. Both learn "both said yes" only if both did.
func (f *Feature) Ask(contactName, question string, answer Answer, within time.Duration) (string, error) {
	if within <= 0 {
		return "", errors.New("interest: a check needs a time to answer in")
	}
	var id [16]byte
	err := f.c.Do(func(tx *client.Tx) error {
		ct, err := tx.Contact(contactName)
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(tx.Rand(), id[:]); err != nil {
			return err
		}
		sctx, err := context(tx, ct, id, question)
		if err != nil {
			return err
		}
		chk, m, err := Ask(tx.Rand(), id, question, tx.Now().Add(within), answer, sctx)
		if err != nil {
			return err
		}
		raw, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		if err := f.save(tx, ct, chk); err != nil {
			return err
		}
		f.checks[id] = chk
		return tx.Queue(ct, client.InterestCheck, raw, client.Queuing{About: "interest check asked: " + client.Excerpt(question), Urgent: true})
	})
	return hex.EncodeToString(id[:]), err
}

// AnswerCheck records the user's answer to a check they were asked. It is
// sent at the check's deadline, whatever and whenever the user answered.
func (f *Feature) AnswerCheck(id string, answer Answer) error {
	cid, err := client.ParseID(id, "a check")
	if err != nil {
		return err
	}
	return f.c.Do(func(tx *client.Tx) error {
		chk, rec, err := f.check(tx, cid)
		if err != nil {
			return err
		}
		if chk.Role != Asked || chk.Result != Pending || rec.Sent2 {
			return fmt.Errorf("interest: check %s is not waiting for your answer", id)
		}
		if !rec.Limited {
			chk.Answer = answer
		}
		tx.Changed()
		ct, _ := tx.ContactByKey(rec.Peer)
		return f.save(tx, ct, chk)
	})
}

// Checks lists the checks, newest first. It reads without the client's
// lock.
func (f *Feature) Checks() ([]Info, error) {
	recs, err := records.All(f.c.Store())
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	var out []Info
	for _, r := range recs {
		out = append(out, Info{ID: hex.EncodeToString(r.ID[:]), Contact: f.c.ContactName(r.Peer), Question: r.Question, Asked: r.Role == Asker,
			Deadline: r.Deadline, Answer: r.Answer.String(), Result: r.Result.String(), Reason: r.Reason, Limited: r.Limited})
	}
	return out, nil
}

// check returns a check, from memory or, after a restart, from its record
// (without protocol state).
func (f *Feature) check(tx *client.Tx, id [16]byte) (*Check, *record, error) {
	r, err := records.Get(tx.Store(), id)
	if err != nil {
		return nil, nil, fmt.Errorf("interest: no check %x: %w", id, err)
	}
	if chk := f.checks[id]; chk != nil {
		return chk, &r, nil
	}
	chk := &Check{ID: r.ID, Role: r.Role, Question: r.Question, Deadline: r.Deadline, Answer: r.Answer, Result: r.Result, Reason: r.Reason, Message1: r.Message1}
	if ct, ok := tx.ContactByKey(r.Peer); ok && !r.Sent2 {
		if sctx, err := context(tx, ct, r.ID, r.Question); err == nil {
			chk.SetContext(sctx)
		}
	}
	if r.Sent2 && r.Result == Pending {
		chk.Result, chk.Reason = NoMatch, "interrupted by a restart"
	}
	f.checks[id] = chk
	return chk, &r, nil
}

func (f *Feature) save(tx *client.Tx, ct client.Contact, chk *Check) error {
	r, err := records.Get(tx.Store(), chk.ID)
	if err != nil {
		r = record{Version: client.StateVersion, ID: chk.ID, Peer: ct.Key, Role: chk.Role, Question: chk.Question, Deadline: chk.Deadline, Created: tx.Now().UTC()}
	}
	r.Answer, r.Result, r.Reason, r.Message1 = chk.Answer, chk.Result, chk.Reason, chk.Message1
	return records.Put(tx.Store(), chk.ID, r)
}

// Receive handles a check message from a contact.
func (f *Feature) Receive(tx *client.Tx, from client.Contact, _ client.ContentKind, body []byte, _ [16]byte) error {
	m, err := ParseMessage(body)
	if err != nil {
		return err
	}
	if m.Type == TypeAsk {
		return f.asked(tx, from, m)
	}
	chk, rec, err := f.check(tx, m.CheckID)
	if err != nil {
		return err
	}
	if rec.Peer != from.Key {
		return fmt.Errorf("a check message from the wrong contact")
	}
	reply, err := chk.Receive(m)
	if err != nil {
		return err
	}
	return f.step(tx, from, chk, reply)
}

// asked keeps a check the contact asked the user, limited if the contact
// asked too often today.
func (f *Feature) asked(tx *client.Tx, from client.Contact, m *Message) error {
	if records.Exists(tx.Store(), m.CheckID) {
		return nil
	}
	sctx, err := context(tx, from, m.CheckID, m.Question)
	if err != nil {
		return err
	}
	chk, err := Received(m, sctx)
	if err != nil {
		return err
	}
	limited := f.recent(tx, from) >= f.maxPerDay
	if err := f.save(tx, from, chk); err != nil {
		return err
	}
	if limited {
		r, _ := records.Get(tx.Store(), chk.ID)
		r.Limited = true
		if err := records.Put(tx.Store(), chk.ID, r); err != nil {
			return err
		}
	}
	f.checks[chk.ID] = chk
	tx.Changed()
	return nil
}

// step saves a check and sends its reply, if any.
func (f *Feature) step(tx *client.Tx, ct client.Contact, chk *Check, reply *Message) error {
	if err := f.save(tx, ct, chk); err != nil {
		return err
	}
	tx.Changed()
	if reply == nil {
		return nil
	}
	raw, err := reply.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.Queue(ct, client.InterestCheck, raw, client.Queuing{About: "interest check, a step of the protocol: " + client.Excerpt(chk.Question), Urgent: true})
}

// recent counts the checks the contact asked the user in the last day.
func (f *Feature) recent(tx *client.Tx, ct client.Contact) int {
	recs, _ := records.All(tx.Store())
	n := 0
	for _, r := range recs {
		if r.Peer == ct.Key && r.Role == Asked && tx.Now().Sub(r.Created) < 24*time.Hour {
			n++
		}
	}
	return n
}

// Tick moves checks along as time passes: the asked side's answer at the
// deadline, time-outs after it.
func (f *Feature) Tick(tx *client.Tx) {
	now := tx.Now()
	for id, chk := range f.checks {
		if chk.Result != Pending {
			continue
		}
		if chk.Role == Asked && now.Before(chk.Deadline) {
			continue
		}
		if chk.Role == Asker && !now.After(chk.Deadline.Add(Grace)) {
			continue
		}
		_, rec, err := f.check(tx, id)
		if err != nil {
			continue
		}
		if rec.Limited {
			chk.Answer = No
		}
		reply, err := chk.Due(tx.Rand(), now)
		if err != nil {
			tx.Log().Error("a check step failed", "err", err)
			continue
		}
		ct, ok := tx.ContactByKey(rec.Peer)
		if !ok {
			continue
		}
		if reply != nil && reply.Type == TypeStep {
			rec.Sent2 = true
			if err := records.Put(tx.Store(), rec.ID, *rec); err != nil {
				tx.Log().Error("saving a check", "err", err)
			}
		}
		if err := f.step(tx, ct, chk, reply); err != nil {
			tx.Log().Error("a check step failed", "err", err)
		}
	}
}
