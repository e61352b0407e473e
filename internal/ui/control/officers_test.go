package control

import (
	"context"
	"errors"
	"testing"

	"github.com/backchannel/backchannel/internal/client"
)

// TestOfficersAct: with several officers every operation is taken by one
// who logged in (a token on the socket, an officer in the web interface's
// context), holding the role the operation needs; the trail names them; a
// token stops working at logout and when its officer is removed.
func TestOfficersAct(t *testing.T) {
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	path := serve(t, alice)
	// One officer: nobody logs in.
	var contacts ContactsResponse
	card, _ := bob.Self().MarshalText()
	if err := Call(path, &ContactAddRequest{Name: "bob", Card: string(card)}, &contacts); err != nil {
		t.Fatal(err)
	}
	if err := Call(path, &OfficerAddRequest{Name: "night officer", Passphrase: "night", Roles: []client.Role{client.RoleReader, client.RoleDrafter, client.RoleAdministrator}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Call(path, &ContactListRequest{}, nil); !errors.Is(errorOf(err), ErrLogin) {
		t.Fatalf("a request without a login, with two officers: %v", err)
	}
	login := func(pass string) string {
		t.Helper()
		var resp OfficerLoginResponse
		if err := Call(path, &OfficerLoginRequest{Passphrase: pass}, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Token
	}
	if err := Call(path, &OfficerLoginRequest{Passphrase: "nobody's"}, nil); err == nil {
		t.Fatal("a login with a wrong passphrase")
	}
	first, night := login("x"), login("night")
	if err := CallAs(path, first, &OfficerAddRequest{Name: "clerk", Passphrase: "clerk", Roles: []client.Role{client.RoleReader}}, nil); err != nil {
		t.Fatal(err)
	}
	clerk := login("clerk")
	if err := CallAs(path, clerk, &ContactListRequest{}, nil); err != nil {
		t.Fatalf("a reader listing contacts: %v", err)
	}
	if err := CallAs(path, clerk, &SendRequest{To: "bob", Text: "hello"}, nil); err == nil {
		t.Fatal("a reader sent a message")
	}
	var sent IDResponse
	if err := CallAs(path, night, &SendRequest{To: "bob", Text: "hello"}, &sent); err != nil {
		t.Fatal(err)
	}
	if err := CallAs(path, "forged", &StatusRequest{}, nil); err == nil {
		t.Fatal("a forged token was taken")
	}
	if err := CallAs(path, night, &OfficerRemoveRequest{Name: "clerk"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := CallAs(path, clerk, &ContactListRequest{}, nil); err == nil {
		t.Fatal("a removed officer's token still works")
	}
	// An officer's own passphrase change: the old one logs in no more.
	if err := CallAs(path, night, &OfficerPassphraseRequest{Passphrase: "night, changed"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Call(path, &OfficerLoginRequest{Passphrase: "night"}, nil); err == nil {
		t.Fatal("the old passphrase still logs in")
	}
	login("night, changed")
	if err := CallAs(path, night, &OfficerPassphraseRequest{Passphrase: "x"}, nil); err == nil {
		t.Fatal("an officer took another's passphrase")
	}
	if err := CallAs(path, night, &OfficerLogoutRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := CallAs(path, night, &StatusRequest{}, nil); err == nil {
		t.Fatal("a token works after logout")
	}
	// The web interface's way: the officer in the context.
	s := &Server{Client: alice}
	if _, err := s.Handle(WithOfficer(context.Background(), "night officer"), &CancelRequest{ID: sent.ID}); err != nil {
		t.Fatal(err)
	}
	entries, err := alice.AuditTrail().Entries()
	if err != nil {
		t.Fatal(err)
	}
	who := map[string]string{}
	for _, e := range entries {
		who[string(e.Action)] = e.Officer
	}
	for action, officer := range map[string]string{"send": "night officer", "cancel": "night officer", "officer-add": client.DefaultOfficer, "officer-remove": "night officer", "officer-login": "night officer", "officer-passphrase": "night officer"} {
		if who[action] != officer {
			t.Errorf("the trail names %q for %s, want %q", who[action], action, officer)
		}
	}
}

// errorOf turns an error from the socket (words only) back into the
// sentinel it began as, for errors.Is.
func errorOf(err error) error {
	if err != nil && err.Error() == ErrLogin.Error() {
		return ErrLogin
	}
	return err
}
