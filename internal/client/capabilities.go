package client

import (
	"fmt"
	"time"
)

// Capabilities: what a contact's software reads, learnt from the contact.
//
// A release that writes a new content version must not send it to a
// contact whose software cannot read it: the old software refuses the
// message (it is acknowledged, so the sender thinks it delivered) and the
// user never sees it. So each client tells each contact, once, the latest
// content version it reads, in a capabilities message
//
//	u8 version (1) | u8 latest content version read
//
// sent in the session like any message (fragmented, acknowledged, retried).
// Software older than the message refuses it — one "refused" count and log
// line at that end, nothing lost — and is written to in version 2 until it
// says otherwise. A client tells again when a contact's word changes (the
// contact upgraded, and may have refused the first telling).

// capabilitiesVersion is the first byte of a capabilities message.
const capabilitiesVersion = 1

// capabilitiesBudget is the capabilities message's time budget: software
// older than it never acknowledges it, and it should not take send slots
// for days (the contact tells its own when it upgrades, and is told again).
const capabilitiesBudget = time.Hour

// announce queues the capabilities message to ct unless ct was told this
// release's; c.mu is held, ct.mu is not.
func (c *Client) announce(ct *contact) error {
	if ct.rec.Announced >= contentVersion {
		return nil
	}
	content := Content{Kind: capabilities, Body: []byte{capabilitiesVersion, contentVersion}}
	if _, err := c.enqueue(ct, content, queuing{capacity: c.fragmentCapacity(), version: oldContentVersion, budget: capabilitiesBudget}); err != nil {
		return err
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.rec.Announced = contentVersion
	return c.saveContact(ct)
}

// readCapabilities takes a contact's capabilities message; c.mu is held.
// When the contact's word changed, it tells the contact this side's again:
// the contact may have refused it before it upgraded.
func (c *Client) readCapabilities(ct *contact, content Content) error {
	reads := int(content.Body[1])
	if reads < oldContentVersion {
		return fmt.Errorf("client: a contact reads content version %d, before the %d every release reads", reads, oldContentVersion)
	}
	ct.mu.Lock()
	changed := reads != ct.rec.Reads
	if changed {
		ct.rec.Reads = reads
		ct.rec.Announced = 0
		c.rekeyIfOld(ct)
		ct.reestablish = ct.reestablish || ct.rec.Rekey
	}
	err := c.saveContact(ct)
	ct.mu.Unlock()
	if err != nil || !changed {
		return err
	}
	return c.announce(ct)
}

// writeVersion is the content version to write to ct: the latest both
// read; c.mu is held.
func writeVersion(ct *contact) int {
	return max(oldContentVersion, min(contentVersion, ct.rec.Reads))
}

// sentAt is a message's sending time as content version 3 carries it.
func sentAt(now time.Time) time.Time { return now.UTC().Truncate(time.Millisecond) }
