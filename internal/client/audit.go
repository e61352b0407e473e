package client

import "github.com/backchannel/backchannel/internal/client/audit"

// Record appends to the identity's audit trail that officer took action
// on object (a message ID, a contact's name; never a message's text).
func (c *Client) Record(officer string, action audit.Action, object string) error {
	return c.trail.Record(officer, action, object)
}

// AuditTrail returns the identity's audit trail, to show and verify.
func (c *Client) AuditTrail() *audit.Trail { return c.trail }
