package client

import (
	"errors"
	"slices"
	"time"
)

// desiredRetention is the mailbox retention to ask the provider for: the
// shortest expiry of any conversation, or 0 for the provider's own.
func (c *Client) desiredRetention() time.Duration {
	var d time.Duration
	for _, ct := range c.contacts {
		if e := ct.rec.Expiry; e > 0 && (d == 0 || e < d) {
			d = e
		}
	}
	return d
}

// expiryKey names a disappearing message: sent (out) or received.
type expiryKey struct {
	out bool
	id  [16]byte
}

// loadExpiries finds the disappearing messages at start.
func (c *Client) loadExpiries() error {
	for _, m := range c.out {
		if !m.rec.Expires.IsZero() {
			c.expiring[expiryKey{out: true, id: m.rec.ID}] = m.rec.Expires
		}
	}
	for id, e := range c.inbox {
		if !e.Expires.IsZero() {
			c.expiring[expiryKey{id: id}] = e.Expires
		}
	}
	return nil
}

// sweep removes the messages whose time is up: their records and bodies are
// overwritten and deleted. c.mu is held.
func (c *Client) sweep(now time.Time) {
	for key, at := range c.expiring {
		if now.Before(at) {
			continue
		}
		if err := c.forget(key); err != nil {
			c.log.Error("deleting a disappearing message", "err", err)
			continue
		}
		delete(c.expiring, key)
		c.notify()
	}
}

// forget overwrites and deletes a message, sent or received, and drops it
// from memory; c.mu is held.
func (c *Client) forget(key expiryKey) error {
	if !key.out {
		delete(c.inbox, key.id)
		return inRecords.delete(c.store, key.id)
	}
	if i := slices.IndexFunc(c.out, func(m *outgoing) bool { return m.rec.ID == key.id }); i >= 0 {
		c.out = slices.Delete(c.out, i, i+1)
	}
	delete(c.outByID, key.id)
	return errors.Join(bodies.delete(c.store, key.id), sentTexts.delete(c.store, key.id), outRecords.delete(c.store, key.id))
}

// startExpiry starts a sent message's time to live once it is delivered or
// failed (a message on its way is never dropped for its expiry); the
// caller saves the record. c.mu is held.
func (c *Client) startExpiry(m *outgoing, now time.Time) {
	if m.rec.TTL > 0 {
		m.rec.Expires = now.UTC().Add(m.rec.TTL)
		c.expiring[expiryKey{out: true, id: m.rec.ID}] = m.rec.Expires
	}
}
