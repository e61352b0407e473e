package client

import (
	"encoding/hex"
	"sort"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// view is what the user sees of the client, published whole at the end of
// every critical section of c.mu (copy on write): the reads — status, the
// inbox, contact lists, the web interface's pages — load it without c.mu,
// so that they answer while the schedule seals, builds and stores packets
// under it. A view is never changed once published.
type view struct {
	self     *identity.Card
	account  Account
	contacts []ContactInfo
	// known maps a contact's identity key (hex) to its name and card, for
	// the features' lists.
	known   map[string]knownContact
	outbox  []MessageInfo
	inbox   []MessageInfo
	network *NetworkInfo
	stats   Stats
	// changed is closed when a view with other contacts or messages
	// replaces this one (not for counters alone).
	changed chan struct{}
}

type knownContact struct {
	name string
	card *identity.Card
}

// nameOf names a contact by its identity key.
func (v *view) nameOf(key string) string {
	if k, ok := v.known[key]; ok {
		return k.name
	}
	return "(a former contact)"
}

// unlock ends a critical section of c.mu: it publishes the view, rebuilt
// whole if notify was called in the section, else with the new counters.
func (c *Client) unlock() {
	c.publish()
	c.mu.Unlock()
}

// notify marks a change the user would see (a message's status, a new
// message, a contact): the view is rebuilt when c.mu is released, and the
// waiters of Changed are woken. c.mu is held.
func (c *Client) notify() { c.dirty = true }

// publish replaces the view; c.mu is held.
func (c *Client) publish() {
	old := c.view.Load()
	if !c.dirty && old.stats == c.stats {
		return // nothing the user sees changed: no copy
	}
	v := *old
	v.stats = c.stats
	if !c.dirty {
		c.view.Store(&v)
		return
	}
	c.dirty = false
	v.contacts, v.known = c.contactInfos()
	v.outbox = c.outboxInfos()
	v.inbox = c.inboxInfos(v.known)
	v.network = c.networkInfo()
	v.changed = make(chan struct{})
	c.view.Store(&v)
	close(old.changed)
}

// contactInfos lists the contacts by name; c.mu is held. A contact's
// safety number (5,200 SHA-512 rounds a side) is computed once.
func (c *Client) contactInfos() ([]ContactInfo, map[string]knownContact) {
	out := make([]ContactInfo, 0, len(c.contacts))
	known := make(map[string]knownContact, len(c.contacts))
	for _, ct := range c.contacts {
		state := "none"
		switch {
		case ct.usable():
			state = "established"
		case ct.sess != nil:
			state = "setting up"
		}
		if ct.safety == "" {
			ct.safety = identity.SafetyNumber(c.self, ct.card)
		}
		out = append(out, ContactInfo{Name: ct.rec.Name, SafetyNumber: ct.safety, Verified: ct.rec.Verified, Session: state, Notice: ct.rec.Notice, Expiry: ct.rec.Expiry})
		known[ct.key] = knownContact{name: ct.rec.Name, card: ct.card}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, known
}

// outboxInfos lists the sent messages, oldest first; c.mu is held.
func (c *Client) outboxInfos() []MessageInfo {
	out := make([]MessageInfo, 0, len(c.out))
	for _, m := range c.out {
		acked := 0
		for _, a := range m.rec.Acked {
			if a {
				acked++
			}
		}
		out = append(out, MessageInfo{
			ID: hex.EncodeToString(m.rec.ID[:]), Contact: m.to.rec.Name, Kind: m.rec.Kind, Name: m.rec.Name, Size: m.rec.Size,
			Status: m.rec.Status, Reason: m.rec.Reason, Time: m.rec.Created, Acked: acked, Fragments: len(m.rec.Acked),
			Text: m.text,
		})
	}
	return out
}

// inboxInfos lists the received messages, oldest first; c.mu is held.
func (c *Client) inboxInfos(known map[string]knownContact) []MessageInfo {
	out := make([]MessageInfo, 0, len(c.inbox))
	for _, rec := range c.inbox {
		from := "(unknown)"
		if k, ok := known[rec.From]; ok {
			from = k.name
		}
		info := MessageInfo{ID: hex.EncodeToString(rec.ID[:]), Contact: from, Incoming: true, Kind: rec.Kind, Name: rec.Name, Size: rec.size, Time: rec.Received,
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

// inboxEntry is a received message as the client keeps it in memory: its
// record, with a file's body left on disk.
type inboxEntry struct {
	inRecord
	size int
}

// indexIn keeps a received message's record in the inbox's memory; c.mu
// is held.
func (c *Client) indexIn(rec inRecord) {
	e := &inboxEntry{inRecord: rec, size: len(rec.Body)}
	if rec.Kind != Text.String() {
		e.Body = nil
	}
	c.inbox[rec.ID] = e
}
