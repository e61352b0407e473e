package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// capturingLink keeps every packet the client sends.
type capturingLink struct {
	recordingLink
	packets [][]byte
}

func (l *capturingLink) Send(p []byte) (uint64, error) {
	l.packets = append(l.packets, bytes.Clone(p))
	return l.recordingLink.Send(p)
}

// TestPendingDraftSendsNothing is issue 23's wire check: while a draft
// waits for approval, none of the packets the client sends, unwrapped
// with the nodes' keys, reaches the contact's mailbox; once it is approved
// and carried out, the next ones do. The drafter cannot approve it.
func TestPendingDraftSendsNothing(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 73, mixesPerLayer: 2, aliceRand: testrand.New(73, 2)})
	alice, clk := p.alice, p.clock
	bob := p.confirmSession(t)
	bobsMailbox := bob.shown.Load().card.Mailbox
	if err := alice.AddOfficer(DefaultOfficer, "night officer", []byte("night"), []Role{RoleReader, RoleReleaser, RoleAdministrator}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"version":2,"op":"send","args":{"to":"bob","text":"the pending text"}}`)
	id, err := alice.NewDraft(DefaultOfficer, "send", "send: to bob", []string{"bob"}, payload, RoleReleaser)
	if err != nil {
		t.Fatal(err)
	}
	link := &capturingLink{recordingLink: recordingLink{clock: clk}}
	sched := newSchedule(alice.timing, p.doc.Parameters, clk.Now())
	fire := func(packets int) (toBob int) {
		t.Helper()
		from := len(link.packets)
		for len(link.packets) < from+packets {
			ev, at, _ := sched.pop()
			clk.Advance(at.Sub(clk.Now()))
			if err := alice.fire(ev, link); err != nil {
				t.Fatal(err)
			}
		}
		for _, packet := range link.packets[from:] {
			if recipientOf(t, p, packet) == bobsMailbox {
				toBob++
			}
		}
		return toBob
	}
	if n := fire(60); n != 0 {
		t.Fatalf("%d of 60 packets reached bob's mailbox while the draft waited", n)
	}
	drafts, err := alice.Drafts()
	if err != nil || len(drafts) != 1 {
		t.Fatalf("drafts: %+v, %v", drafts, err)
	}
	if _, err := alice.ApproveDraft(DefaultOfficer, id, drafts[0].MAC); !errors.Is(err, ErrOwnDraft) {
		t.Fatalf("the drafter approving: %v", err)
	}
	d, err := alice.ApproveDraft("night officer", id, drafts[0].MAC)
	if err != nil {
		t.Fatal(err)
	}
	// Carried out as the control layer does: the request's send.
	msg, err := alice.Send("bob", Content{Kind: Text, Body: []byte("the pending text")})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.DraftDone(d.ID, msg, nil); err != nil {
		t.Fatal(err)
	}
	if n := fire(60); n == 0 {
		t.Fatal("the approved message never left: the check above would not see one either")
	}
	drafts, _ = alice.Drafts()
	if drafts[0].State != DraftApproved || drafts[0].Result != msg || drafts[0].Payload != nil {
		t.Fatalf("the approved draft: %+v", drafts[0])
	}
}
