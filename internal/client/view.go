package client

import (
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
	v.outbox = c.outbox.infos(func(ct *contact) string { return ct.rec.Name }, c.cfg.TimeBudget)
	v.inbox = c.inbox.infos(func(key string) (string, bool) {
		k, ok := v.known[key]
		return k.name, ok
	})
	v.network = c.networkInfo()
	v.changed = make(chan struct{})
	c.view.Store(&v)
	close(old.changed)
}

// contactInfos lists the contacts by name; c.mu is held. It reads each
// session's shown state, never a contact's lock. A contact's safety number
// (5,200 SHA-512 rounds a side) is computed once.
func (c *Client) contactInfos() ([]ContactInfo, map[string]knownContact) {
	out := make([]ContactInfo, 0, len(c.contacts))
	known := make(map[string]knownContact, len(c.contacts))
	for _, ct := range c.contacts {
		shown := ct.shown.Load()
		if ct.safety == "" {
			ct.safety = identity.SafetyNumber(c.self, shown.card)
		}
		out = append(out, ContactInfo{Name: ct.rec.Name, SafetyNumber: ct.safety, Verified: ct.rec.Verified, Session: shown.state, Notice: ct.rec.Notice, Expiry: ct.rec.Expiry, Reads: ct.rec.Reads, TimeBudget: ct.rec.TimeBudget, Envelope: shown.envelope})
		known[ct.key] = knownContact{name: ct.rec.Name, card: shown.card}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, known
}
