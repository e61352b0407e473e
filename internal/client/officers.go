package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/backchannel/backchannel/internal/client/audit"
	"github.com/backchannel/backchannel/internal/client/vault"
)

// Officers: an identity (one card, one mailbox, one daemon) is worked by
// named officers, each unlocking the state with a passphrase of their own
// (a slot of the vault's keyring, package vault), each holding roles. An
// identity with one officer works as a single user's did; a state of the
// previous release opens as one officer holding every role.
//
// The separation is the daemon's: officers who share an operating-system
// account can read each other's terminal and the state's files, and only
// the passphrases keep the state itself from them.

// Role is what an officer may do.
type Role string

// The roles. An officer may hold several.
const (
	// RoleReader reads messages, lists and the audit trail.
	RoleReader Role = "reader"
	// RoleDrafter writes messages and answers.
	RoleDrafter Role = "drafter"
	// RoleReleaser approves what another officer drafted.
	RoleReleaser Role = "releaser"
	// RoleAdministrator manages officers, roles and settings.
	RoleAdministrator Role = "administrator"
)

// Roles are the roles, in the order they are shown.
var Roles = []Role{RoleReader, RoleDrafter, RoleReleaser, RoleAdministrator}

// ParseRoles reads a comma-separated list of roles.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, r := range strings.Split(s, ",") {
		role := Role(strings.TrimSpace(r))
		if !slices.Contains(Roles, role) {
			return nil, fmt.Errorf("client: no role %q (the roles: reader, drafter, releaser, administrator)", r)
		}
		if !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	slices.SortFunc(out, func(a, b Role) int { return slices.Index(Roles, a) - slices.Index(Roles, b) })
	return out, nil
}

// DefaultOfficer names the first officer when init is given no name, and
// the one officer of a state of the previous release.
const DefaultOfficer = "first officer"

// officersRecord is the identity's officers (officersLabel).
type officersRecord struct {
	Version  int             `json:"version"`
	Officers []officerRecord `json:"officers"`
}

type officerRecord struct {
	Name  string    `json:"name"`
	Slot  string    `json:"slot"` // the vault keyring slot's ID, hex
	Roles []Role    `json:"roles"`
	Added time.Time `json:"added"`
}

// Officer is an officer as shown.
type Officer struct {
	Name  string    `json:"name"`
	Roles []Role    `json:"roles"`
	Added time.Time `json:"added"`
	// You: the officer who unlocked this client.
	You bool `json:"you,omitempty"`
}

// Errors of officer management.
var (
	ErrNotAllowed    = errors.New("client: your roles do not allow that")
	ErrNoOfficer     = errors.New("client: no such officer")
	ErrTwoAdmins     = errors.New("client: an identity with two or more officers keeps at least two administrators (one may be a recovery passphrase kept in a safe)")
	ErrOfficerExists = errors.New("client: an officer of that name exists")
)

// loadOfficers reads the officers and names the one whose passphrase
// opened the state. A state without the record (new, or of the previous
// release) gets one officer with every role. A slot the record does not
// name is an addition or removal a crash interrupted (the record is written
// after a slot is added and before one is removed): it is removed.
func (c *Client) loadOfficers(name string) error {
	dir := c.store.dir
	mine := dir.Officer()
	err := c.store.get(officersLabel, &c.officers)
	if errors.Is(err, vault.ErrNotFound) {
		if name == "" {
			name = DefaultOfficer
		}
		if err := checkOfficerName(name); err != nil {
			return err
		}
		c.officers = officersRecord{Version: StateVersion, Officers: []officerRecord{{
			Name: name, Slot: hex.EncodeToString(mine[:]), Roles: slices.Clone(Roles), Added: c.cfg.Clock.Now().UTC(),
		}}}
		err = c.store.put(officersLabel, c.officers)
	}
	if err != nil {
		return err
	}
	for _, id := range dir.Officers() {
		if c.officerBySlot(id) == nil && id != dir.Officer() {
			if err := dir.RemoveOfficer(id); err != nil {
				return fmt.Errorf("client: removing an officer slot left by a crash: %w", err)
			}
		}
	}
	me := c.officerBySlot(dir.Officer())
	if me == nil {
		return fmt.Errorf("client: that passphrase's officer is being removed: %w", ErrWrongPassphrase)
	}
	c.officer = me.Name
	return nil
}

func (c *Client) officerBySlot(id vault.SlotID) *officerRecord {
	for i, o := range c.officers.Officers {
		if o.Slot == hex.EncodeToString(id[:]) {
			return &c.officers.Officers[i]
		}
	}
	return nil
}

// slotID is the officer's vault slot.
func (o *officerRecord) slotID() (vault.SlotID, error) {
	b, err := hex.DecodeString(o.Slot)
	if err != nil || len(b) != len(vault.SlotID{}) {
		return vault.SlotID{}, fmt.Errorf("client: officer %q has a bad slot ID %q", o.Name, o.Slot)
	}
	return vault.SlotID(b), nil
}

func (c *Client) officerByName(name string) *officerRecord {
	for i, o := range c.officers.Officers {
		if o.Name == name {
			return &c.officers.Officers[i]
		}
	}
	return nil
}

// Officers lists the identity's officers.
func (c *Client) Officers() []Officer {
	c.omu.Lock()
	defer c.omu.Unlock()
	out := make([]Officer, 0, len(c.officers.Officers))
	for _, o := range c.officers.Officers {
		out = append(out, Officer{Name: o.Name, Roles: slices.Clone(o.Roles), Added: o.Added, You: o.Name == c.officer})
	}
	return out
}

// OfficerName names the officer who unlocked this client.
func (c *Client) OfficerName() string { return c.officer }

// May reports ErrNotAllowed unless the officer holds role (ErrNoOfficer if
// there is no such officer, or no longer).
func (c *Client) May(officer string, role Role) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.may(officer, role)
}

// may is May with c.omu held.
func (c *Client) may(officer string, role Role) error {
	o := c.officerByName(officer)
	if o == nil {
		return fmt.Errorf("%w: %q", ErrNoOfficer, officer)
	}
	if !slices.Contains(o.Roles, role) {
		return fmt.Errorf("%w: %s needs the %s role", ErrNotAllowed, officer, role)
	}
	return nil
}

// SoleOfficer names the identity's one officer, or returns "" if it has
// several: who acts when nobody logged in.
func (c *Client) SoleOfficer() string {
	c.omu.Lock()
	defer c.omu.Unlock()
	if len(c.officers.Officers) != 1 {
		return ""
	}
	return c.officers.Officers[0].Name
}

// checkOfficerName refuses names that could not be shown or typed plainly.
func checkOfficerName(name string) error {
	if name == "" || len(name) > 64 || strings.TrimSpace(name) != name {
		return fmt.Errorf("client: an officer's name has 1 to 64 characters, no space at either end: %q", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("client: an officer's name is printable: %q", name)
		}
	}
	return nil
}

// enoughAdministrators checks the rule that keeps an organisation from
// locking itself out with one forgotten passphrase.
func enoughAdministrators(officers []officerRecord) error {
	admins := 0
	for _, o := range officers {
		if slices.Contains(o.Roles, RoleAdministrator) {
			admins++
		}
	}
	if len(officers) >= 2 && admins < 2 {
		return ErrTwoAdmins
	}
	return nil
}

// AddOfficer adds an officer who will unlock with passphrase (which they
// type: it must not be another officer's). The officer who acts, by, must
// be an administrator.
func (c *Client) AddOfficer(by, name string, passphrase []byte, roles []Role) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	if err := c.may(by, RoleAdministrator); err != nil {
		return err
	}
	if err := checkOfficerName(name); err != nil {
		return err
	}
	if c.officerByName(name) != nil {
		return fmt.Errorf("%w: %q", ErrOfficerExists, name)
	}
	if len(roles) == 0 {
		return errors.New("client: an officer holds at least one role")
	}
	next := append(slices.Clone(c.officers.Officers), officerRecord{Name: name, Roles: slices.Clone(roles), Added: c.cfg.Clock.Now().UTC()})
	if err := enoughAdministrators(next); err != nil {
		return err
	}
	id, err := c.store.dir.AddOfficer(c.cfg.Rand, passphrase, c.vaultParams())
	if errors.Is(err, vault.ErrPassphraseTaken) {
		return errors.New("client: choose another passphrase (each officer's must be their own)")
	}
	if err != nil {
		return err
	}
	next[len(next)-1].Slot = hex.EncodeToString(id[:])
	if err := c.saveOfficers(next); err != nil {
		return err
	}
	return c.Record(by, audit.Action("officer-add"), name+" as "+rolesText(roles))
}

// RemoveOfficer removes an officer: their passphrase opens nothing of the
// state from now on (a new state key, every entry sealed again). An
// administrator, by, removes another officer, never themselves.
func (c *Client) RemoveOfficer(by, name string) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	if err := c.may(by, RoleAdministrator); err != nil {
		return err
	}
	o := c.officerByName(name)
	if o == nil {
		return fmt.Errorf("%w: %q", ErrNoOfficer, name)
	}
	if name == by {
		return errors.New("client: another administrator removes you")
	}
	slot, err := o.slotID()
	if err != nil {
		return err
	}
	next := slices.DeleteFunc(slices.Clone(c.officers.Officers), func(r officerRecord) bool { return r.Name == name })
	if err := enoughAdministrators(next); err != nil {
		return err
	}
	// The record first: a crash before the re-key ends leaves a slot no
	// officer names, which the next unlock removes (loadOfficers).
	if err := c.saveOfficers(next); err != nil {
		return err
	}
	if err := c.store.dir.RemoveOfficer(slot); err != nil {
		return err
	}
	return c.Record(by, audit.Action("officer-remove"), name)
}

// SetRoles gives an officer the roles; by is an administrator.
func (c *Client) SetRoles(by, name string, roles []Role) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	if err := c.may(by, RoleAdministrator); err != nil {
		return err
	}
	if c.officerByName(name) == nil {
		return fmt.Errorf("%w: %q", ErrNoOfficer, name)
	}
	if len(roles) == 0 {
		return errors.New("client: an officer holds at least one role")
	}
	next := slices.Clone(c.officers.Officers)
	for i := range next {
		if next[i].Name == name {
			next[i].Roles = slices.Clone(roles)
		}
	}
	if err := enoughAdministrators(next); err != nil {
		return err
	}
	if err := c.saveOfficers(next); err != nil {
		return err
	}
	return c.Record(by, audit.Action("officer-role"), name+" as "+rolesText(roles))
}

// ChangePassphrase gives officer by a new passphrase of their own: their
// slot alone is rewritten (and the old one's blocks overwritten); the
// state key and every other officer's stay as they are.
func (c *Client) ChangePassphrase(by string, passphrase []byte) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	o := c.officerByName(by)
	if o == nil {
		return fmt.Errorf("%w: %q", ErrNoOfficer, by)
	}
	slot, err := o.slotID()
	if err != nil {
		return err
	}
	err = c.store.dir.ChangePassphrase(slot, passphrase, c.vaultParams())
	if errors.Is(err, vault.ErrPassphraseTaken) {
		return errors.New("client: choose another passphrase (each officer's must be their own)")
	}
	if err != nil {
		return err
	}
	return c.Record(by, audit.Action("officer-passphrase"), by)
}

func (c *Client) saveOfficers(officers []officerRecord) error {
	rec := officersRecord{Version: StateVersion, Officers: officers}
	if err := c.store.put(officersLabel, rec); err != nil {
		return fmt.Errorf("client: saving the officers: %w", err)
	}
	c.officers = rec
	return nil
}

// vaultParams are the passphrase hashing parameters for a new slot.
func (c *Client) vaultParams() vault.Params {
	if c.cfg.VaultParams != (vault.Params{}) {
		return c.cfg.VaultParams
	}
	return vault.DefaultParams()
}

func rolesText(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
