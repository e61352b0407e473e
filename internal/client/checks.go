package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/features/smp"
)

// checkRecord is a mutual interest check ("check/<id hex>"). The protocol
// state itself is kept in memory only: a check interrupted by a restart
// ends as "no match", as an abort does.
type checkRecord struct {
	Version  int             `json:"version"`
	ID       [16]byte        `json:"id"`
	Peer     string          `json:"peer"`
	Role     interest.Role   `json:"role"`
	Question string          `json:"question"`
	Deadline time.Time       `json:"deadline"`
	Answer   interest.Answer `json:"answer"`
	Result   interest.Result `json:"result"`
	Reason   string          `json:"reason,omitempty"`
	Message1 []byte          `json:"message1,omitempty"`
	Sent2    bool            `json:"sent2,omitempty"`
	Created  time.Time       `json:"created"`
	// Limited: the contact asked more often than the user allows; the
	// check is answered "no" whatever the user says.
	Limited bool `json:"limited,omitempty"`
}

// DefaultMaxChecksPerDay is how many checks a contact may ask the user in a
// day unless the user says otherwise (Config.MaxChecksPerDay); beyond it,
// checks are answered "no", which looks like any other answer.
const DefaultMaxChecksPerDay = 3

// CheckInfo is a mutual interest check as the user sees it.
type CheckInfo struct {
	ID, Contact, Question string
	Asked                 bool // the user asked it
	Deadline              time.Time
	Answer                string
	Result                string
	Reason                string
	Limited               bool
}

// checkContext is the check's SMP context: the session's ID, both identity
// keys, the check ID and the question.
func (c *Client) checkContext(ct *contact, id [16]byte, question string) ([]byte, error) {
	if ct.rec.Session == nil || len(ct.rec.Session.ID) == 0 || !ct.usable() {
		return nil, fmt.Errorf("client: no session with %s yet: send them a message first", ct.rec.Name)
	}
	return smp.Context(ct.rec.Session.ID, c.id.DH.PublicKey().Bytes(), ct.card.DHKey[:], id[:], question), nil
}

// Ask starts a mutual interest check with the contact: question, the
// user's own answer (asking is answering), and how long the contact has to
// answer. Both learn "both said yes" only if both did.
func (c *Client) Ask(contactName, question string, answer interest.Answer, within time.Duration) (string, error) {
	if within <= 0 {
		return "", errors.New("client: a check needs a time to answer in")
	}
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(contactName)
	if ct == nil {
		return "", fmt.Errorf("%w: %q", ErrNoContact, contactName)
	}
	var id [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, id[:]); err != nil {
		return "", err
	}
	ctx, err := c.checkContext(ct, id, question)
	if err != nil {
		return "", err
	}
	chk, m, err := interest.Ask(c.cfg.Rand, id, question, c.cfg.Clock.Now().Add(within), answer, ctx)
	if err != nil {
		return "", err
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	if err := c.saveCheck(ct, chk); err != nil {
		return "", err
	}
	c.checks[id] = chk
	if _, err := c.queueControl(ct, InterestCheck, raw); err != nil {
		return "", err
	}
	return hex.EncodeToString(id[:]), nil
}

// AnswerCheck records the user's answer to a check they were asked. It is
// sent at the check's deadline, whatever and whenever the user answered.
func (c *Client) AnswerCheck(id string, answer interest.Answer) error {
	cid, err := parseID(id, "a check")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	chk, rec, err := c.loadCheck(cid)
	if err != nil {
		return err
	}
	if chk.Role != interest.Asked || chk.Result != interest.Pending || rec.Sent2 {
		return fmt.Errorf("client: check %s is not waiting for your answer", id)
	}
	if !rec.Limited {
		chk.Answer = answer
	}
	c.notify()
	return c.saveCheck(c.contacts[rec.Peer], chk)
}

// Checks lists the checks, newest first.
func (c *Client) Checks() ([]CheckInfo, error) {
	// Reads the vault without c.mu (it is safe for concurrent use) and
	// names contacts from the view: it answers while packets are built.
	v := c.view.Load()
	recs, err := checkRecords.all(c.store)
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	var out []CheckInfo
	for _, r := range recs {
		out = append(out, CheckInfo{ID: hex.EncodeToString(r.ID[:]), Contact: v.nameOf(r.Peer), Question: r.Question, Asked: r.Role == interest.Asker,
			Deadline: r.Deadline, Answer: r.Answer.String(), Result: r.Result.String(), Reason: r.Reason, Limited: r.Limited})
	}
	return out, nil
}

// loadCheck returns a check, from memory or, after a restart, from its
// record (without protocol state).
func (c *Client) loadCheck(id [16]byte) (*interest.Check, *checkRecord, error) {
	var r checkRecord
	if err := checkRecords.get(c.store, id, &r); err != nil {
		return nil, nil, fmt.Errorf("client: no check %x: %w", id, err)
	}
	if chk := c.checks[id]; chk != nil {
		return chk, &r, nil
	}
	chk := &interest.Check{ID: r.ID, Role: r.Role, Question: r.Question, Deadline: r.Deadline, Answer: r.Answer, Result: r.Result, Reason: r.Reason, Message1: r.Message1}
	if ct := c.contacts[r.Peer]; ct != nil && !r.Sent2 {
		if ctx, err := c.checkContext(ct, r.ID, r.Question); err == nil {
			chk.SetContext(ctx)
		}
	}
	if r.Sent2 && r.Result == interest.Pending {
		chk.Result, chk.Reason = interest.NoMatch, "interrupted by a restart"
	}
	c.checks[id] = chk
	return chk, &r, nil
}

func (c *Client) saveCheck(ct *contact, chk *interest.Check) error {
	var r checkRecord
	if err := checkRecords.get(c.store, chk.ID, &r); err != nil {
		r = checkRecord{Version: stateVersion, ID: chk.ID, Peer: ct.key, Role: chk.Role, Question: chk.Question, Deadline: chk.Deadline, Created: c.cfg.Clock.Now().UTC()}
	}
	r.Answer, r.Result, r.Reason, r.Message1 = chk.Answer, chk.Result, chk.Reason, chk.Message1
	return checkRecords.put(c.store, chk.ID, r)
}

// handleCheck handles a check message from ct; c.mu is held.
func (c *Client) handleCheck(ct *contact, body []byte, now time.Time) error {
	m, err := interest.ParseMessage(body)
	if err != nil {
		return err
	}
	if m.Type == interest.TypeAsk {
		if checkRecords.exists(c.store, m.CheckID) {
			return nil
		}
		ctx, err := c.checkContext(ct, m.CheckID, m.Question)
		if err != nil {
			return err
		}
		chk, err := interest.Received(m, ctx)
		if err != nil {
			return err
		}
		limited := c.recentChecks(ct, now) >= c.cfg.MaxChecksPerDay
		if err := c.saveCheck(ct, chk); err != nil {
			return err
		}
		if limited {
			var r checkRecord
			checkRecords.get(c.store, chk.ID, &r)
			r.Limited = true
			if err := checkRecords.put(c.store, chk.ID, r); err != nil {
				return err
			}
		}
		c.checks[chk.ID] = chk
		c.notify()
		return nil
	}
	chk, rec, err := c.loadCheck(m.CheckID)
	if err != nil {
		return err
	}
	if rec.Peer != ct.key {
		return fmt.Errorf("a check message from the wrong contact")
	}
	reply, err := chk.Receive(m)
	if err != nil {
		return err
	}
	return c.afterCheckStep(ct, chk, reply)
}

// afterCheckStep saves a check and sends its reply, if any.
func (c *Client) afterCheckStep(ct *contact, chk *interest.Check, reply *interest.Message) error {
	if err := c.saveCheck(ct, chk); err != nil {
		return err
	}
	c.notify()
	if reply == nil {
		return nil
	}
	raw, err := reply.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = c.queueControl(ct, InterestCheck, raw)
	return err
}

// recentChecks counts the checks the contact asked the user in the last day.
func (c *Client) recentChecks(ct *contact, now time.Time) int {
	recs, _ := checkRecords.all(c.store)
	n := 0
	for _, r := range recs {
		if r.Peer == ct.key && r.Role == interest.Asked && now.Sub(r.Created) < 24*time.Hour {
			n++
		}
	}
	return n
}

// dueChecks moves checks along as time passes: the asked side's answer at
// the deadline, time-outs after it. c.mu is held.
func (c *Client) dueChecks(now time.Time) {
	for id, chk := range c.checks {
		if chk.Result != interest.Pending {
			continue
		}
		if chk.Role == interest.Asked && now.Before(chk.Deadline) {
			continue
		}
		if chk.Role == interest.Asker && !now.After(chk.Deadline.Add(interest.Grace)) {
			continue
		}
		_, rec, err := c.loadCheck(id)
		if err != nil {
			continue
		}
		if rec.Limited {
			chk.Answer = interest.No
		}
		reply, err := chk.Due(c.cfg.Rand, now)
		if err != nil {
			c.log.Error("a check step failed", "err", err)
			continue
		}
		ct := c.contacts[rec.Peer]
		if ct == nil {
			continue
		}
		if reply != nil && reply.Type == interest.TypeStep {
			rec.Sent2 = true
			if err := checkRecords.put(c.store, rec.ID, *rec); err != nil {
				c.log.Error("saving a check", "err", err)
			}
		}
		if err := c.afterCheckStep(ct, chk, reply); err != nil {
			c.log.Error("a check step failed", "err", err)
		}
	}
}

// loadChecks brings the pending checks into memory at start.
func (c *Client) loadChecks() error {
	recs, err := checkRecords.all(c.store)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Result == interest.Pending {
			if _, _, err := c.loadCheck(r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// handleControl dispatches a message the client handles itself; c.mu is
// held.
func (c *Client) handleControl(ct *contact, content Content, id [16]byte, now time.Time) error {
	switch content.Kind {
	case Introduction:
		return c.handleIntroduction(ct, content.Body, now)
	case Conveyance:
		return c.handleConveyance(ct, content.Body, id, now)
	case InterestCheck:
		return c.handleCheck(ct, content.Body, now)
	case ExpirySetting:
		return c.handleExpirySetting(ct, content.Body)
	}
	return fmt.Errorf("%w: content kind %v", ErrMalformed, content.Kind)
}
