package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/fragment"
)

// inbox owns what arrives: the received messages' records (inRecords),
// the fragments of messages not yet whole (fragmentLabel), the reassembler,
// and the record of which messages were delivered, so that each is
// delivered once (receivedLabel): nothing else touches those entries.
//
// Its lock is a leaf, as the outbox's: no inbox method calls out of the
// inbox while holding it.
type inbox struct {
	store store

	mu       sync.Mutex
	entries  map[[16]byte]*inboxEntry
	reasm    *fragment.Reassembler
	received receivedRecord
}

// inboxEntry is a received message as the client keeps it in memory: its
// record, with a file's body left on disk.
type inboxEntry struct {
	inRecord
	size int
}

func newInbox(st store) *inbox {
	return &inbox{store: st, entries: map[[16]byte]*inboxEntry{}, reasm: &fragment.Reassembler{},
		received: receivedRecord{Version: StateVersion, IDs: map[string]time.Time{}}}
}

// load reads the inbox at start: what was delivered, the fragments kept,
// the messages' records. It returns the expiries of the messages that
// have one.
func (in *inbox) load(now time.Time) (map[[16]byte]time.Time, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.store.get(receivedLabel, &in.received); err != nil && !errors.Is(err, vault.ErrNotFound) {
		return nil, err
	}
	labels, err := in.store.dir.Labels(fragmentPrefix)
	if err != nil {
		return nil, err
	}
	for _, label := range labels {
		b, err := in.store.dir.Get(label)
		if err != nil {
			return nil, err
		}
		if _, _, _, err := in.reasm.Add(b, now); err != nil {
			return nil, fmt.Errorf("client: stored fragment %s: %w", label, err)
		}
	}
	recs, err := inRecords.all(in.store)
	if err != nil {
		return nil, err
	}
	expiries := map[[16]byte]time.Time{}
	for _, rec := range recs {
		in.index(rec)
		if !rec.Expires.IsZero() {
			expiries[rec.ID] = rec.Expires
		}
	}
	return expiries, nil
}

// index keeps a received message's record in memory; in.mu is held.
func (in *inbox) index(rec inRecord) {
	e := &inboxEntry{inRecord: rec, size: len(rec.Body)}
	if rec.Kind != Text.String() {
		e.Body = nil
	}
	in.entries[rec.ID] = e
}

// receivedKey names a message from a contact in the received record.
func receivedKey(from string, id [16]byte) string { return from + "/" + hex.EncodeToString(id[:]) }

// keep stores a fragment from the contact from. When it completes a
// message not delivered before, it returns the message's ID and encoding
// (whole is nil otherwise); duplicate reports a fragment of a message
// delivered already, which is acknowledged again but not kept.
func (in *inbox) keep(from string, raw []byte, now time.Time) (id [16]byte, whole []byte, duplicate bool, err error) {
	f, err := fragment.Parse(raw)
	if err != nil {
		return id, nil, false, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, done := in.received.IDs[receivedKey(from, f.ID)]; done {
		return id, nil, true, nil
	}
	if err := in.store.dir.Put(fragmentLabel(from, f.ID, int(f.Index)), raw); err != nil {
		return id, nil, false, err
	}
	id, whole, complete, err := in.reasm.Add(raw, now)
	if err != nil || !complete {
		return id, nil, false, err
	}
	return id, whole, false, nil
}

// add stores a received message's record and shows it in the inbox.
func (in *inbox) add(rec inRecord) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := inRecords.put(in.store, rec.ID, rec); err != nil {
		return err
	}
	in.index(rec)
	return nil
}

// settle records that the message id from the contact from was
// delivered, once its content is kept (in the inbox or by a feature), so
// that a fragment of it sent again is acknowledged and not delivered
// again, and deletes its fragments. Deliveries are remembered for
// receivedMemory.
func (in *inbox) settle(from string, id [16]byte, now time.Time) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.received.IDs[receivedKey(from, id)] = now.UTC()
	for k, t := range in.received.IDs {
		if now.Sub(t) > receivedMemory {
			delete(in.received.IDs, k)
		}
	}
	if err := in.store.put(receivedLabel, in.received); err != nil {
		return err
	}
	labels, _ := in.store.dir.Labels(fragmentsOf(from, id))
	for _, l := range labels {
		in.store.dir.Delete(l)
	}
	return nil
}

// forget overwrites and deletes a received message.
func (in *inbox) forget(id [16]byte) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.entries, id)
	return inRecords.delete(in.store, id)
}

// infos lists the received messages, oldest first; name names a contact
// by its key.
func (in *inbox) infos(name func(key string) (string, bool)) []MessageInfo {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]MessageInfo, 0, len(in.entries))
	for _, rec := range in.entries {
		from, ok := name(rec.From)
		if !ok {
			from = "(unknown)"
		}
		info := MessageInfo{ID: hexID(rec.ID), Contact: from, Incoming: true, Kind: rec.Kind, Name: rec.Name, Size: rec.size, Time: rec.Received, Sent: rec.Sent,
			Conveyed: rec.Conveyed, Label: rec.Label, Note: rec.Note}
		if rec.Kind == Text.String() {
			info.Text = string(rec.Body)
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Inbox lists the received messages, oldest first.
func (c *Client) Inbox() ([]MessageInfo, error) { return c.view.Load().inbox, nil }

// InboxSize returns how many messages the inbox holds.
func (c *Client) InboxSize() (int, error) { return len(c.view.Load().inbox), nil }

// Received returns a received message's content.
func (c *Client) Received(id string) (Content, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return Content{}, fmt.Errorf("client: %q is not a message ID", id)
	}
	// Read from the vault without any lock: it is safe for concurrent use.
	var rec inRecord
	if err := inRecords.get(c.store, [16]byte(raw), &rec); err != nil {
		return Content{}, err
	}
	kind := Text
	if rec.Kind == File.String() {
		kind = File
	}
	return Content{Kind: kind, Name: rec.Name, Body: rec.Body}, nil
}
