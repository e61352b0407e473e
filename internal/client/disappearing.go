package client

import (
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
// from memory.
func (c *Client) forget(key expiryKey) error {
	if key.out {
		return c.outbox.forget(key.id)
	}
	return c.inbox.forget(key.id)
}

// expireLater schedules a settled message's disappearance, if it has a
// time to live; c.mu is held.
func (c *Client) expireLater(m *outgoing) {
	if at := c.outbox.expires(m); !at.IsZero() {
		c.expiring[expiryKey{out: true, id: m.rec.ID}] = at
	}
}
