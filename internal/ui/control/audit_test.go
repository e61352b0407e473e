package control

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/backchannel/backchannel/internal/client/audit"
)

// TestAuditTrailRecordsActions: the unlock, every operation that acts and
// a message read are in the trail, each with what it was on and never a
// text; what only shows the state is not; the trail verifies.
func TestAuditTrailRecordsActions(t *testing.T) {
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	s := &Server{Client: alice, BackupParams: testParams}
	ctx := context.Background()
	card, err := bob.Self().MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(ctx, &ContactAddRequest{Name: "bob", Card: string(card)}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Handle(ctx, &SendRequest{To: "bob", Text: "the secret text"})
	if err != nil {
		t.Fatal(err)
	}
	sent := resp.(IDResponse).ID
	if _, err := s.Handle(ctx, &CancelRequest{ID: sent}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{&ContactListRequest{}, &StatusRequest{}, &InboxRequest{}} {
		if _, err := s.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Handle(ctx, &SendRequest{To: "carol", Text: "to nobody"}); err == nil {
		t.Fatal("sent to a stranger")
	}

	resp, err = s.Handle(ctx, &AuditShowRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range resp.(AuditShowResponse).Entries {
		if e.Officer == "" || e.Time.IsZero() {
			t.Errorf("entry %d names no officer or time: %+v", e.Seq, e)
		}
		got = append(got, fmt.Sprintf("%s %s", e.Action, e.Object))
	}
	want := []string{
		string(audit.Unlock) + " ",
		"contact-add bob",
		"send message " + sent + ", to bob",
		"cancel message " + sent,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, " "), "secret") {
		t.Fatal("the trail holds a message's text")
	}
	resp, err = s.Handle(ctx, &AuditVerifyRequest{})
	if err != nil || resp.(AuditVerifyResponse).Checked != len(want) {
		t.Fatalf("verify: %+v, %v", resp, err)
	}
}
