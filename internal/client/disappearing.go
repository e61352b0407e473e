package client

import (
	"fmt"
	"strings"
	"time"
)

// SetExpiry makes the conversation's messages disappear after d at both
// ends (0 turns it off): the user's next messages carry it, and the
// contact's client adopts it when they arrive. The provider is asked to
// keep the user's unfetched packets no longer than the shortest expiry of
// any conversation.
func (c *Client) SetExpiry(name string, d time.Duration) error {
	if d < 0 || d > MaxTTL || d%time.Second != 0 {
		return fmt.Errorf("client: a disappearing time of %v, want whole seconds up to %v", d, MaxTTL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.byName(name)
	if ct == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	ct.rec.Expiry = d
	c.notify()
	return c.saveContact(ct)
}

// adoptExpiry takes the expiry a contact's message carried; c.mu is held.
func (c *Client) adoptExpiry(ct *contact, d time.Duration) {
	ct.rec.Expiry = d
	if d == 0 {
		ct.rec.Notice = fmt.Sprintf("%s turned disappearing messages off", ct.rec.Name)
	} else {
		ct.rec.Notice = fmt.Sprintf("%s set messages to disappear %v after they are sent or received", ct.rec.Name, d)
	}
	if err := c.saveContact(ct); err != nil {
		c.log.Error("saving a contact", "err", err)
	}
	c.notify()
}

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

// loadExpiries finds the disappearing messages at start.
func (c *Client) loadExpiries() error {
	for _, prefix := range []string{"in/", "out/"} {
		labels, err := c.store.dir.Labels(prefix)
		if err != nil {
			return err
		}
		for _, l := range labels {
			var head struct {
				Version int       `json:"version"`
				Expires time.Time `json:"expires"`
			}
			if err := c.store.get(l, &head); err != nil {
				return err
			}
			if !head.Expires.IsZero() {
				c.expiring[l] = head.Expires
			}
		}
	}
	return nil
}

// sweep removes the messages whose time is up: their records and bodies are
// overwritten and deleted, and a message still on its way stops being
// sent. c.mu is held.
func (c *Client) sweep(now time.Time) {
	for label, at := range c.expiring {
		if now.Before(at) {
			continue
		}
		if strings.HasPrefix(label, "out/") {
			for i, m := range c.out {
				if outLabel(m.rec.ID) == label {
					m.rec.Status, m.rec.Reason, m.frags = Failed, "disappeared", nil
					c.out = append(c.out[:i], c.out[i+1:]...)
					delete(c.outByID, m.rec.ID)
					if err := c.store.dir.Delete(bodyLabel(m.rec.ID)); err != nil {
						c.log.Error("deleting a disappearing message", "err", err)
					}
					break
				}
			}
		}
		if err := c.store.dir.Delete(label); err != nil {
			c.log.Error("deleting a disappearing message", "err", err)
			continue
		}
		delete(c.expiring, label)
		c.notify()
	}
}
