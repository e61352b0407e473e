package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/backchannel/backchannel/internal/client/vault"
)

// Dual control, switched on for the whole identity or per contact: what an
// officer drafts to send (a message, a conveyed message, a pass at the
// desk, an introduction, an interest check's answer) leaves only when a
// different officer with the releaser role approves it (drafts.go). Which
// operations, and which contacts they concern, the control layer says;
// this file keeps the setting and its rules.
//
// Separately, what could take the organisation's control away — switching
// dual control off, giving an officer the releaser or administrator role,
// wiping the state — needs two administrators once the identity has two:
// one drafts it, another approves it.

// dualControlRecord is the setting (dualControlLabel).
type dualControlRecord struct {
	Version  int      `json:"version"`
	Identity bool     `json:"identity"`
	Contacts []string `json:"contacts,omitempty"` // contact keys
}

const dualControlLabel = "dual-control"

// DualControl is the setting as shown.
type DualControl struct {
	Identity bool     `json:"identity"`
	Contacts []string `json:"contacts,omitempty"` // contact names
}

// ErrFewReleasers: dual control needs someone to approve every officer's
// drafts.
var ErrFewReleasers = errors.New("client: dual control needs at least two officers with the releaser role (nobody approves their own draft)")

// dualControl reads the setting; none is off. c.omu is held.
func (c *Client) dualControl() (dualControlRecord, error) {
	rec := dualControlRecord{Version: StateVersion}
	if err := c.store.get(dualControlLabel, &rec); err != nil && !errors.Is(err, vault.ErrNotFound) {
		return rec, err
	}
	return rec, nil
}

// DualControlSetting returns the setting.
func (c *Client) DualControlSetting() (DualControl, error) {
	c.omu.Lock()
	rec, err := c.dualControl()
	c.omu.Unlock()
	if err != nil {
		return DualControl{}, err
	}
	out := DualControl{Identity: rec.Identity}
	c.mu.Lock()
	defer c.unlock()
	for _, key := range rec.Contacts {
		if ct := c.contacts[key]; ct != nil {
			out.Contacts = append(out.Contacts, ct.rec.Name)
		}
	}
	return out, nil
}

// DualControlFor reports whether an operation concerning the contacts
// (names; none: the identity as a whole) needs a releaser's approval.
func (c *Client) DualControlFor(contacts []string) (bool, error) {
	c.omu.Lock()
	rec, err := c.dualControl()
	c.omu.Unlock()
	if err != nil || rec.Identity {
		return rec.Identity, err
	}
	c.mu.Lock()
	defer c.unlock()
	for _, name := range contacts {
		if ct := c.byName(name); ct != nil && slices.Contains(rec.Contacts, ct.key) {
			return true, nil
		}
	}
	return false, nil
}

// SetDualControl switches dual control on or off, for the identity
// (contact "") or one contact, as administrator by. Switching off is one
// of the changes that need two administrators: the caller has it
// approved first (NeedsTwoAdministrators).
func (c *Client) SetDualControl(by string, on bool, contact string) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	if err := c.may(by, RoleAdministrator); err != nil {
		return err
	}
	if on && c.countRole(RoleReleaser) < 2 {
		return ErrFewReleasers
	}
	rec, err := c.dualControl()
	if err != nil {
		return err
	}
	what := "the identity"
	if contact == "" {
		rec.Identity = on
	} else {
		c.mu.Lock()
		ct := c.byName(contact)
		c.unlock()
		if ct == nil {
			return fmt.Errorf("client: no such contact %q", contact)
		}
		rec.Contacts = slices.DeleteFunc(rec.Contacts, func(k string) bool { return k == ct.key })
		if on {
			rec.Contacts = append(rec.Contacts, ct.key)
		}
		what = contact
	}
	if err := c.store.put(dualControlLabel, rec); err != nil {
		return err
	}
	state := "off"
	if on {
		state = "on"
	}
	return c.Record(by, "dual-control", what+": "+state)
}

// NeedsTwoAdministrators reports whether changes that could take the
// organisation's control away need a second administrator's approval:
// once the identity has two administrators.
func (c *Client) NeedsTwoAdministrators() bool {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.countRole(RoleAdministrator) >= 2
}

// countRole counts the officers holding role; c.omu is held.
func (c *Client) countRole(role Role) int {
	n := 0
	for _, o := range c.officers.Officers {
		if slices.Contains(o.Roles, role) {
			n++
		}
	}
	return n
}
