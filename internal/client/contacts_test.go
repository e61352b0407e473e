package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestRenameContact: a rename changes the user's name for a contact and
// nothing else — what was queued to them follows, the old name is free,
// another contact's name or an empty one is refused — and it is kept.
func TestRenameContact(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 41, aliceRand: testrand.New(41, 2)})
	alice := p.alice
	id, err := alice.Send("bob", Content{Kind: Text, Body: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Rename("bob", "a party in country X"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Rename("bob", "b"); !errors.Is(err, ErrNoContact) {
		t.Errorf("renaming a name no contact has: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("x", 65)} {
		if err := alice.Rename("a party in country X", bad); err == nil {
			t.Errorf("renamed to %q", bad)
		}
	}
	// A second contact: its name cannot be taken.
	carol := newOfflinePair(t, offline{seed: 42, aliceRand: testrand.New(42, 2)}).alice
	if err := alice.AddContact("carol", carol.Self()); err != nil {
		t.Fatal(err)
	}
	if err := alice.Rename("carol", "a party in country X"); err == nil || !strings.Contains(err.Error(), "already have a contact") {
		t.Errorf("took another contact's name: %v", err)
	}
	check := func(c *Client) {
		t.Helper()
		names := map[string]bool{}
		for _, ct := range c.Contacts() {
			names[ct.Name] = true
		}
		if !names["a party in country X"] || names["bob"] || !names["carol"] {
			t.Errorf("contacts after the rename: %v", names)
		}
		found := false
		for _, m := range c.Outbox() {
			if m.ID == id {
				found = m.Contact == "a party in country X"
			}
		}
		if !found {
			t.Errorf("the message queued to bob does not follow him: %+v", c.Outbox())
		}
	}
	check(alice)
	alice.Close()
	reopened, err := Open(p.aliceCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	check(reopened)
}
