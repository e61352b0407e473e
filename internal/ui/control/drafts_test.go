package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// TestDualControl follows issue 23's part 4 at the control layer: under
// dual control what an officer drafts is not sent (nothing is queued)
// until a different releaser approves the exact content; an edit voids
// what was shown before; a rejected draft never leaves; switching dual
// control off needs a second administrator.
func TestDualControl(t *testing.T) {
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	s := &Server{Client: alice}
	first := WithOfficer(context.Background(), client.DefaultOfficer)
	night := WithOfficer(context.Background(), "night officer")
	clerk := WithOfficer(context.Background(), "clerk")
	do := func(ctx context.Context, r Request) any {
		t.Helper()
		resp, err := s.Handle(ctx, r)
		if err != nil {
			t.Fatalf("%s: %v", r.Op(), err)
		}
		return resp
	}
	card, _ := bob.Self().MarshalText()
	do(first, &ContactAddRequest{Name: "bob", Card: string(card)})
	if _, err := s.Handle(first, &DualControlRequest{On: true}); !errors.Is(err, client.ErrFewReleasers) {
		t.Fatalf("dual control with one releaser: %v", err)
	}
	do(first, &OfficerAddRequest{Name: "night officer", Passphrase: "night", Roles: []client.Role{client.RoleReader, client.RoleReleaser, client.RoleAdministrator}})
	do(first, &OfficerAddRequest{Name: "clerk", Passphrase: "clerk", Roles: []client.Role{client.RoleReader, client.RoleDrafter}})
	do(first, &DualControlRequest{On: true})

	drafted, ok := do(clerk, &SendRequest{To: "bob", Text: "the first text"}).(DraftedResponse)
	if !ok || drafted.Needs != client.RoleReleaser {
		t.Fatalf("a message under dual control: %+v", drafted)
	}
	queued := func() int {
		t.Helper()
		return len(do(first, &StatusRequest{}).(StatusResponse).Messages)
	}
	if n := queued(); n != 0 {
		t.Fatalf("a draft queued %d messages", n)
	}
	shown := func(id string) DraftInfo {
		t.Helper()
		for _, d := range do(first, &DraftsRequest{}).(DraftsResponse).Drafts {
			if d.ID == id {
				return d
			}
		}
		t.Fatalf("no draft %s", id)
		return DraftInfo{}
	}
	before := shown(drafted.Draft)
	if before.State != client.DraftPending || before.DraftedBy != "clerk" || !strings.Contains(string(before.Request), "the first text") {
		t.Fatalf("the draft as shown: %+v", before)
	}
	if _, err := s.Handle(clerk, &ApproveRequest{ID: drafted.Draft, MAC: before.MAC}); err == nil {
		t.Fatal("the clerk approved their own draft (and holds no releaser role)")
	}
	do(clerk, &DraftEditRequest{ID: drafted.Draft, Text: "the edited text"})
	if _, err := s.Handle(night, &ApproveRequest{ID: drafted.Draft, MAC: before.MAC}); !errors.Is(err, client.ErrDraftChanged) {
		t.Fatalf("approving what was shown before an edit: %v", err)
	}
	if n := queued(); n != 0 {
		t.Fatalf("%d messages queued before an approval", n)
	}
	after := shown(drafted.Draft)
	approved := do(night, &ApproveRequest{ID: drafted.Draft, MAC: after.MAC}).(ApproveResponse)
	if approved.Op != "send" {
		t.Fatalf("approving did %q", approved.Op)
	}
	if msgs := do(first, &StatusRequest{}).(StatusResponse).Messages; len(msgs) != 1 || msgs[0].DraftedBy != "clerk" || msgs[0].ApprovedBy != "night officer" {
		t.Fatalf("after the approval the sent messages are %+v, want one drafted by the clerk and approved by the night officer", msgs)
	}
	if d := shown(drafted.Draft); d.State != client.DraftApproved || d.DecidedBy != "night officer" || len(d.Result) != 32 || d.Request != nil {
		t.Fatalf("the approved draft: %+v", d)
	}
	if _, err := s.Handle(night, &ApproveRequest{ID: drafted.Draft, MAC: after.MAC}); !errors.Is(err, client.ErrDraftNotReady) {
		t.Fatalf("approving twice: %v", err)
	}

	// A rejected draft never leaves, and its text is gone.
	rejected := do(clerk, &SendRequest{To: "bob", Text: "a text to refuse"}).(DraftedResponse)
	do(night, &RejectRequest{ID: rejected.Draft, Note: "not now"})
	if d := shown(rejected.Draft); d.State != client.DraftRejected || d.Request != nil {
		t.Fatalf("the rejected draft: %+v", d)
	}
	if n := queued(); n != 1 {
		t.Fatalf("%d messages queued after a rejection, want 1", n)
	}

	// Switching off needs a second administrator.
	off := do(first, &DualControlRequest{On: false}).(DraftedResponse)
	if off.Needs != client.RoleAdministrator {
		t.Fatalf("switching off: %+v", off)
	}
	if setting := do(first, &DualControlRequest{Show: true}).(DualControlResponse).Setting; !setting.Identity {
		t.Fatal("dual control went off on one administrator's word")
	}
	do(night, &ApproveRequest{ID: off.Draft, MAC: shown(off.Draft).MAC})
	if setting := do(first, &DualControlRequest{Show: true}).(DualControlResponse).Setting; setting.Identity {
		t.Fatal("dual control stayed on after the second administrator's approval")
	}
	do(clerk, &SendRequest{To: "bob", Text: "sent at once"})
	if n := queued(); n != 2 {
		t.Fatalf("%d messages queued with dual control off, want 2", n)
	}

	checkTrail(t, alice, drafted.Draft, rejected.Draft, before.MAC, after.MAC, shown(drafted.Draft).Result)

	// The administrators' retention: a cut of the trail needs both.
	cut := do(first, &AuditCutRequest{Before: time.Now().Add(time.Hour)}).(DraftedResponse)
	do(night, &ApproveRequest{ID: cut.Draft, MAC: shown(cut.Draft).MAC})
	if n, err := alice.AuditTrail().Verify(); err != nil || n > 3 {
		t.Fatalf("after the cut the trail verifies with %d entries: %v", n, err)
	}
}

// checkTrail checks what TestDualControl's trail says, and that it holds
// no text.
func checkTrail(t *testing.T, alice *client.Client, drafted, rejected, before, after, sent string) {
	t.Helper()
	entries, err := alice.AuditTrail().Entries()
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range entries {
		trail = append(trail, e.Officer+" "+string(e.Action)+" "+e.Object)
		if strings.Contains(e.Object, "text") {
			t.Errorf("the trail holds a text: %q", e.Object)
		}
	}
	joined := strings.Join(trail, "\n")
	for _, want := range []string{
		"clerk draft draft " + drafted + ": send, content " + before,
		"clerk draft-edit draft " + drafted + ": content " + after,
		"night officer approve draft " + drafted + " of clerk: send, content " + after,
		"night officer send message " + sent + ", to bob, drafted by clerk in draft " + drafted,
		"night officer reject draft " + rejected + " of clerk: send",
		"first officer dual-control the identity: off", // done as its drafter, after the approval above it
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("the trail lacks %q:\n%s", want, joined)
		}
	}
}
