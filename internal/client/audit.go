package client

import "github.com/backchannel/backchannel/internal/client/audit"

// officer names who acts in the audit trail: until an identity has several
// officers, each with a passphrase of their own, the one who holds its
// passphrase.
const officer = "passphrase holder"

// Record appends to the identity's audit trail that the user took action
// on object (a message ID, a contact's name; never a message's text).
func (c *Client) Record(action audit.Action, object string) error {
	return c.trail.Record(officer, action, object)
}

// AuditTrail returns the identity's audit trail, to show and verify.
func (c *Client) AuditTrail() *audit.Trail { return c.trail }
