package client

import (
	"encoding/hex"
	"fmt"
)

// loadInbox reads the received messages' records into memory.
func (c *Client) loadInbox() error {
	recs, err := inRecords.all(c.store)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		c.indexIn(rec)
	}
	return nil
}

func (c *Client) loadFragments() error {
	labels, err := c.store.dir.Labels(fragmentPrefix)
	if err != nil {
		return err
	}
	now := c.cfg.Clock.Now()
	for _, label := range labels {
		b, err := c.store.dir.Get(label)
		if err != nil {
			return err
		}
		if _, _, _, err := c.reasm.Add(b, now); err != nil {
			return fmt.Errorf("client: stored fragment %s: %w", label, err)
		}
	}
	return nil
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
	// Read from the vault without c.mu: it is safe for concurrent use.
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
