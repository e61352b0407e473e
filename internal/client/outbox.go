package client

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/fragment"
)

// outbox owns the messages being sent and sent: their records, content
// and sent texts on disk (outRecords, bodies, sentTexts: nothing else
// touches those tables), their fragments, attempts and acknowledgements in
// memory, and the transmissions waiting for their acks.
//
// Its lock is a leaf: no outbox method calls out of the outbox while
// holding it, so it may be taken under c.mu or a contact's lock, and a
// packet's cryptography never runs under it.
type outbox struct {
	store store
	log   *slog.Logger

	mu      sync.Mutex
	msgs    []*outgoing // in creation order
	byID    map[[16]byte]*outgoing
	pending map[[16]byte]*transmission // by SURB ID
}

// outgoing is a message being sent. Its record's ID, To, Kind, Name,
// Size, Created, TTL and Ref are set when it is made and never change, so
// they are read without a lock; the rest of it is guarded by the outbox's
// lock.
type outgoing struct {
	rec      outRecord
	to       *contact
	frags    [][]byte
	sent     []bool
	due      []time.Time // when each unacknowledged fragment may go (again)
	attempts []int
	// base is each fragment's attempts when its round of fast attempts
	// began (retry.go).
	base []int
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

func newOutbox(st store, log *slog.Logger) *outbox {
	return &outbox{store: st, log: log, byID: map[[16]byte]*outgoing{}, pending: map[[16]byte]*transmission{}}
}

// load reads the messages at start. A message on its way gets its
// fragments back from its stored content (cut to capacity); what a crash
// left behind is repaired (see dropStaleContent). It returns the expiries
// of the messages that have one.
func (o *outbox) load(contacts map[string]*contact, capacity int, now time.Time) (map[[16]byte]time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	recs, err := outRecords.all(o.store)
	if err != nil {
		return nil, err
	}
	expiries := map[[16]byte]time.Time{}
	for _, rec := range recs {
		to := contacts[rec.To]
		if to == nil {
			return nil, fmt.Errorf("%w: message %x is to an unknown contact", ErrMalformed, rec.ID)
		}
		m := &outgoing{rec: rec, to: to}
		if rec.Kind == Text.String() {
			// States from before sent texts were kept have none.
			if text, err := sentTexts.get(o.store, rec.ID); err == nil {
				m.text = string(text)
			} else if !errors.Is(err, vault.ErrNotFound) {
				return nil, err
			}
		}
		if m.pending() {
			body, err := bodies.get(o.store, rec.ID)
			switch {
			case errors.Is(err, vault.ErrNotFound):
				// Earlier releases deleted a message's content before
				// saving its last acknowledgement: a crash between the
				// two left this. Content is deleted only once a message
				// is settled, and only its delivery deleted it first, so
				// the message was delivered.
				o.log.Warn("a message's last acknowledgement was interrupted; it is marked delivered", "kind", rec.Kind)
				for i := range m.rec.Acked {
					m.rec.Acked[i] = true
				}
				m.settle(Delivered, "", now)
				if err := outRecords.put(o.store, rec.ID, m.rec); err != nil {
					return nil, err
				}
			case err != nil:
				return nil, err
			default:
				if err := m.cut(body, capacity); err != nil {
					return nil, err
				}
				if len(m.frags) != len(rec.Acked) {
					return nil, fmt.Errorf("%w: message %x has %d fragments, its record %d", ErrMalformed, rec.ID, len(m.frags), len(rec.Acked))
				}
			}
		}
		if !m.rec.Expires.IsZero() {
			expiries[m.rec.ID] = m.rec.Expires
		}
		o.msgs = append(o.msgs, m)
		o.byID[rec.ID] = m
	}
	sort.SliceStable(o.msgs, func(i, j int) bool { return o.msgs[i].rec.Created.Before(o.msgs[j].rec.Created) })
	return expiries, o.dropStaleContent()
}

// dropStaleContent deletes what a crash left behind: the content of a
// settled message (saved settled, not yet deleted) and the content and
// text of a message whose record was never saved (a crash while it was
// queued: the user was not told it was queued). o.mu is held.
func (o *outbox) dropStaleContent() error {
	ids, err := bodies.ids(o.store)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if m := o.byID[id]; m == nil || !m.pending() {
			if err := bodies.delete(o.store, id); err != nil {
				return err
			}
		}
	}
	if ids, err = sentTexts.ids(o.store); err != nil {
		return err
	}
	for _, id := range ids {
		if o.byID[id] == nil {
			if err := sentTexts.delete(o.store, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// add stores a new message (its content, its text, then its record: a
// crash before the record leaves only content that dropStaleContent
// deletes) and queues it.
func (o *outbox) add(m *outgoing, body []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := m.rec.ID
	if err := bodies.put(o.store, id, body); err != nil {
		return err
	}
	if m.rec.Kind == Text.String() {
		if err := sentTexts.put(o.store, id, []byte(m.text)); err != nil {
			return err
		}
	}
	if err := outRecords.put(o.store, id, m.rec); err != nil {
		return err
	}
	o.msgs = append(o.msgs, m)
	o.byID[id] = m
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
	m.base = make([]int, len(frags))
	return nil
}

// pending reports whether the message still has fragments to deliver.
func (m *outgoing) pending() bool { return m.rec.Status == Queued || m.rec.Status == Sent }

// settle ends a message (delivered or failed) in memory: its fragments
// go, and its time to live starts (a message on its way is never dropped
// for its expiry). The caller saves the record, then deletes the content.
func (m *outgoing) settle(status Status, reason string, now time.Time) {
	m.rec.Status, m.rec.Reason = status, reason
	if status == Delivered {
		m.rec.Delivered = now.UTC()
	}
	if m.rec.TTL > 0 {
		m.rec.Expires = now.UTC().Add(m.rec.TTL)
	}
	m.frags = nil
}

// saveSettled saves a settled message's record, then deletes its content:
// a crash between the two leaves a settled message with its content still
// on disk (deleted at the next start), never a message on its way without
// it. o.mu is held.
func (o *outbox) saveSettled(m *outgoing) {
	if err := outRecords.put(o.store, m.rec.ID, m.rec); err != nil {
		o.log.Error("saving a settled message", "status", m.rec.Status, "err", err)
		return
	}
	if err := bodies.delete(o.store, m.rec.ID); err != nil {
		o.log.Error("deleting a settled message's content", "err", err)
	}
}

// contactsWaiting returns, in the order of their oldest message, the
// contacts that have a message on its way.
func (o *outbox) contactsWaiting() []*contact {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[*contact]bool{}
	var out []*contact
	for _, m := range o.msgs {
		if m.pending() && !seen[m.to] {
			seen[m.to] = true
			out = append(out, m.to)
		}
	}
	return out
}

// fragmentPick is the fragment the schedule sends next: its message and
// index, the record to seal, and whether it goes again.
type fragmentPick struct {
	m      *outgoing
	index  int
	record []byte
	again  bool
}

// nextFragment picks the next fragment that is due to a contact whose
// session is usable — an urgent message's first, then in message order —
// and takes its attempt: it counts as sent from now, and is due again
// after retry(attempt, probe). A fragment of a message that is not urgent,
// not sent before, waits while maxInFlight are in flight; a held
// contact's fragments wait but its probe (retry.go). ok is false when
// nothing is due (or, if urgentOnly, no urgent message's fragment).
func (o *outbox) nextFragment(now time.Time, usable map[*contact]bool, retry func(attempt int, probe bool) time.Duration, urgentOnly bool) (p fragmentPick, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	inFlight := 0
	for _, t := range o.pending {
		if t.msg != nil && !t.msg.rec.Acked[t.index] && t.msg.due[t.index].After(now) {
			inFlight++
		}
	}
	held := o.probes()
	passes := []bool{true, false}
	if urgentOnly {
		passes = passes[:1]
	}
	for _, urgent := range passes {
		for _, m := range o.msgs {
			if m.rec.Urgent != urgent || !m.pending() || !usable[m.to] {
				continue
			}
			probe, isHeld := held[m.to]
			for i := range m.frags {
				if m.rec.Acked[i] || m.due[i].After(now) || isHeld && probe != (fragmentRef{m, i}) {
					continue
				}
				if !m.sent[i] && inFlight >= maxInFlight && !urgent {
					return fragmentPick{}, false
				}
				m.attempts[i]++
				again := m.sent[i]
				m.sent[i] = true
				m.due[i] = now.Add(retry(m.attempts[i]-m.base[i], isHeld))
				return fragmentPick{m: m, index: i, record: append([]byte{recordFragment}, m.frags[i]...), again: again}, true
			}
		}
	}
	return fragmentPick{}, false
}

// sentOnce marks a queued message sent once every fragment has left at
// least once; it reports whether that changed what the user sees.
func (o *outbox) sentOnce(m *outgoing) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.rec.Status != Queued || !allTrue(m.sent) {
		return false
	}
	m.rec.Status = Sent
	if err := outRecords.put(o.store, m.rec.ID, m.rec); err != nil {
		o.log.Error("saving a sent message", "err", err)
	}
	return true
}

func allTrue(v []bool) bool {
	for _, b := range v {
		if !b {
			return false
		}
	}
	return true
}

// sentWith records a transmission, to find it by its SURB's ID when its
// ack comes back.
func (o *outbox) sentWith(surbID [16]byte, t *transmission) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending[surbID] = t
}

// transmission returns the transmission of a SURB ID, or nil (a SURB of
// an earlier run, or a repeat).
func (o *outbox) transmission(surbID [16]byte) *transmission {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[surbID]
}

// answered forgets a transmission whose ack came back (once the ack
// decrypted: a forged reply does not remove it).
func (o *outbox) answered(surbID [16]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.pending, surbID)
}

// acknowledge records the ack of a fragment; it reports whether the
// message is now delivered (saved, its content deleted).
func (o *outbox) acknowledge(m *outgoing, index int, now time.Time) (delivered bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !m.pending() || m.rec.Acked[index] {
		return false
	}
	if _, held := o.probes()[m.to]; held {
		o.resume(m.to, now)
	} else {
		o.fresh(m.to)
	}
	m.rec.Acked[index] = true
	if !allTrue(m.rec.Acked) {
		if err := outRecords.put(o.store, m.rec.ID, m.rec); err != nil {
			o.log.Error("saving an acknowledgement", "err", err)
		}
		return false
	}
	m.settle(Delivered, "", now)
	o.saveSettled(m)
	return true
}

// expires is when a settled message disappears (zero: never).
func (o *outbox) expires(m *outgoing) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return m.rec.Expires
}

// forgetTransmissions drops the transmissions older than timeout whose
// acks can no longer matter (their message settled, or a hello's).
func (o *outbox) forgetTransmissions(now time.Time, timeout time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, t := range o.pending {
		if now.Sub(t.sentAt) > timeout && (t.msg == nil || !t.msg.pending()) {
			delete(o.pending, id)
		}
	}
}

// forget overwrites and deletes a message and drops it from memory.
func (o *outbox) forget(id [16]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, m := range o.msgs {
		if m.rec.ID == id {
			o.msgs = append(o.msgs[:i], o.msgs[i+1:]...)
			break
		}
	}
	delete(o.byID, id)
	return errors.Join(bodies.delete(o.store, id), sentTexts.delete(o.store, id), outRecords.delete(o.store, id))
}

// delivered returns the delivered messages of the given kinds that a
// feature queued with a reference.
func (o *outbox) delivered(kinds map[string]bool) []*outgoing {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*outgoing
	for _, m := range o.msgs {
		if m.rec.Status == Delivered && kinds[m.rec.Kind] && m.rec.Ref != ([16]byte{}) {
			out = append(out, m)
		}
	}
	return out
}

// infos lists the messages as the user sees them, oldest first; names
// gives a contact's name, budget is the default time budget.
func (o *outbox) infos(name func(*contact) string, budget time.Duration) []MessageInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]MessageInfo, 0, len(o.msgs))
	for _, m := range o.msgs {
		if m.rec.Kind == capabilities.String() {
			continue // the client's own, not the user's
		}
		info := MessageInfo{
			ID: hexID(m.rec.ID), Contact: name(m.to), Kind: m.rec.Kind, Name: m.rec.Name, Size: m.rec.Size,
			Status: m.rec.Status, Reason: m.rec.Reason, Time: m.rec.Created, Fragments: len(m.rec.Acked),
			Text: m.text, About: m.rec.About, DraftedBy: m.rec.DraftedBy, ApprovedBy: m.rec.ApprovedBy,
		}
		if m.pending() {
			info.Deadline = m.deadline(budget)
		}
		for i, a := range m.rec.Acked {
			if a {
				info.Acked++
				continue
			}
			if i < len(m.attempts) && m.attempts[i] > 0 {
				info.Attempts = max(info.Attempts, m.attempts[i])
				if info.NextAttempt.IsZero() || m.due[i].Before(info.NextAttempt) {
					info.NextAttempt = m.due[i]
				}
			}
		}
		out = append(out, info)
	}
	return out
}
