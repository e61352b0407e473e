package client

import (
	"errors"
	"fmt"
)

// ErrNotOnItsWay: the message is delivered or failed already, or is not
// the user's (a feature's message ends with its feature).
var ErrNotOnItsWay = errors.New("client: the message is not on its way")

// Cancel stops sending a message on its way: it is marked failed,
// "cancelled", and none of its fragments goes again. What the contact
// already received of it stays there (a fragment on its way cannot be
// called back); a message with all its fragments received is delivered
// to them.
func (c *Client) Cancel(id string) error {
	m, err := c.ownMessage(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	if status, ok := c.outbox.cancel(m, c.cfg.Clock.Now()); !ok {
		return fmt.Errorf("%w: %s is %s", ErrNotOnItsWay, id, status)
	}
	c.expireLater(m)
	c.notify()
	return nil
}

// Retry sends a message on its way again at once: every fragment not yet
// acknowledged is due now, with a new round of fast attempts (retry.go).
// A failed text is queued again as a new message, whose ID it returns; a
// failed file cannot be (its content is gone once it failed): send it
// again.
func (c *Client) Retry(id string) (string, error) {
	m, err := c.ownMessage(id)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	status, onItsWay := c.outbox.retryNow(m, c.cfg.Clock.Now())
	to := m.to.rec.Name
	c.notify()
	c.unlock()
	if onItsWay {
		return id, nil
	}
	switch {
	case status != Failed:
		return "", fmt.Errorf("%w: %s is %s", ErrNotOnItsWay, id, status)
	case m.rec.Kind != Text.String() || m.text == "":
		return "", fmt.Errorf("client: %s was a file; its content is not kept once it failed: send the file again", id)
	}
	return c.Send(to, Content{Kind: Text, Body: []byte(m.text)})
}

// ownMessage finds an outgoing message of the user's (a text or a file).
func (c *Client) ownMessage(id string) (*outgoing, error) {
	raw, err := ParseID(id, "a message")
	if err != nil {
		return nil, err
	}
	m := c.outbox.byIDLocked(raw)
	if m == nil || m.rec.Kind != Text.String() && m.rec.Kind != File.String() {
		return nil, fmt.Errorf("client: no message of yours has the ID %s", id)
	}
	return m, nil
}
