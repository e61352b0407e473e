package control

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
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

// TestInboxShownIsRecorded: an officer shown the inbox's texts is recorded
// as having read it, once for each new newest message (the page lists the
// inbox at every change), each officer apart.
func TestInboxShownIsRecorded(t *testing.T) {
	alice := newClient(t, "alice")
	var seen inboxSeen
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	older := client.MessageInfo{ID: "older", Incoming: true, Time: at}
	newer := client.MessageInfo{ID: "newer", Incoming: true, Time: at.Add(time.Minute)}
	mine := client.MessageInfo{ID: "mine", Time: at.Add(time.Hour)} // sent, not shown as received
	for _, step := range []struct {
		officer string
		msgs    []client.MessageInfo
	}{
		{"duty officer", nil},
		{"duty officer", []client.MessageInfo{older}},
		{"duty officer", []client.MessageInfo{older}},
		{"duty officer", []client.MessageInfo{newer, older, mine}},
		{"night officer", []client.MessageInfo{older, newer}},
		{"duty officer", []client.MessageInfo{older, newer}},
	} {
		if err := seen.record(alice, step.officer, step.msgs); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := alice.AuditTrail().Entries()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries[1:] { // after the unlock
		got = append(got, e.Officer+": "+e.Object)
	}
	want := []string{"duty officer: the inbox, up to message older", "duty officer: the inbox, up to message newer", "night officer: the inbox, up to message newer"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
