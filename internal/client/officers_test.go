package client

import (
	"errors"
	"slices"
	"testing"

	"github.com/backchannel/backchannel/internal/client/audit"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestOfficers follows issue 23's parts 1 to 3 at the client: the first
// officer holds every role; officers are added with passphrases of their
// own and roles; an identity of two or more officers keeps two
// administrators; only administrators change officers; the passphrase
// that opens the state names the officer the audit trail records; a
// removed officer's passphrase opens nothing.
func TestOfficers(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 71, aliceRand: testrand.New(71, 2)})
	alice, cfg := p.alice, p.aliceCfg
	got := alice.Officers()
	if len(got) != 1 || got[0].Name != DefaultOfficer || !got[0].You || !slices.Equal(got[0].Roles, Roles) {
		t.Fatalf("a new identity's officers: %+v", got)
	}
	night := []byte("the night officer's own passphrase")
	if err := alice.AddOfficer(DefaultOfficer, "night officer", night, []Role{RoleReader, RoleDrafter}); !errors.Is(err, ErrTwoAdmins) {
		t.Fatalf("a second officer who is no administrator: %v", err)
	}
	if err := alice.AddOfficer(DefaultOfficer, "night officer", cfg.Passphrase, []Role{RoleAdministrator}); err == nil {
		t.Fatal("an officer added with the first officer's passphrase")
	}
	if err := alice.AddOfficer(DefaultOfficer, " padded", night, []Role{RoleAdministrator}); err == nil {
		t.Fatal("an officer's name with a space at its end")
	}
	if err := alice.AddOfficer(DefaultOfficer, "night officer", night, []Role{RoleReader, RoleAdministrator}); err != nil {
		t.Fatal(err)
	}
	if err := alice.AddOfficer(DefaultOfficer, "night officer", []byte("another"), []Role{RoleAdministrator}); !errors.Is(err, ErrOfficerExists) {
		t.Fatalf("two officers of one name: %v", err)
	}
	clerk := []byte("the clerk's passphrase")
	if err := alice.AddOfficer(DefaultOfficer, "clerk", clerk, []Role{RoleReader}); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetRoles(DefaultOfficer, "night officer", []Role{RoleReader}); !errors.Is(err, ErrTwoAdmins) {
		t.Fatalf("leaving one administrator: %v", err)
	}
	if err := alice.RemoveOfficer(DefaultOfficer, DefaultOfficer); err == nil {
		t.Fatal("an officer removed themselves")
	}
	alice.Close()

	open := func(pass []byte) *Client {
		t.Helper()
		c2 := cfg
		c2.Passphrase, c2.Rand = pass, testrand.New(71, 9)
		c, err := Open(c2)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open(clerk)
	if c.OfficerName() != "clerk" {
		t.Fatalf("the clerk's passphrase opened as %q", c.OfficerName())
	}
	if err := c.AddOfficer("clerk", "intruder", []byte("x"), []Role{RoleAdministrator}); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a reader adding an officer: %v", err)
	}
	if err := c.RemoveOfficer("clerk", "night officer"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a reader removing an officer: %v", err)
	}
	if name, err := c.OfficerOf(night); err != nil || name != "night officer" {
		t.Fatalf("OfficerOf(night) = %q, %v", name, err)
	}
	c.Close()

	c = open(night)
	if err := c.RemoveOfficer("night officer", "clerk"); err != nil {
		t.Fatal(err)
	}
	entries, err := c.AuditTrail().Entries()
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range entries {
		trail = append(trail, e.Officer+" "+string(e.Action)+" "+e.Object)
	}
	want := []string{
		DefaultOfficer + " " + string(audit.Unlock) + " ",
		DefaultOfficer + " officer-add night officer as reader, administrator",
		DefaultOfficer + " officer-add clerk as reader",
		"clerk " + string(audit.Unlock) + " ",
		"night officer " + string(audit.Unlock) + " ",
		"night officer officer-remove clerk",
	}
	if !slices.Equal(trail, want) {
		t.Fatalf("the audit trail:\n%q\nwant\n%q", trail, want)
	}
	c.Close()
	c2 := cfg
	c2.Passphrase = clerk
	if _, err := Open(c2); err == nil {
		t.Fatal("the removed clerk's passphrase opens the state")
	}
	open(cfg.Passphrase).Close()
}
