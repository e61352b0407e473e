package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/interest"
)

// trio starts a network and three running clients: an intermediary who
// knows both, and two parties who know only the intermediary.
func trio(t *testing.T) (n *testNetwork, i, a, b *Client) {
	t.Helper()
	n = startNetwork(t, fastParameters())
	i = n.newClient(t, "mediator", "provider-a", Config{})
	a = n.newClient(t, "alice", "provider-a", Config{})
	b = n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, i, "mediator", a, "alice")
	introduce(t, i, "mediator", b, "bob")
	for _, c := range []*Client{i, a, b} {
		run(t, c)
	}
	return n, i, a, b
}

func introductionState(t *testing.T, c *Client) IntroductionInfo {
	t.Helper()
	list, err := c.Introductions()
	if err != nil || len(list) != 1 {
		t.Fatalf("introductions %+v, %v", list, err)
	}
	return list[0]
}

func waitIntroduced(t *testing.T, c *Client) IntroductionInfo {
	t.Helper()
	waitUntil(t, c, time.Minute, "an introduction", func() bool {
		list, _ := c.Introductions()
		return len(list) == 1
	})
	return introductionState(t, c)
}

func TestIntroduction(t *testing.T) {
	_, i, a, b := trio(t)
	if _, err := i.Introduce("alice", "bob", "a party in country X", "a party in country Y", "you asked to be put in touch"); err != nil {
		t.Fatal(err)
	}
	ai, bi := waitIntroduced(t, a), waitIntroduced(t, b)
	if ai.Label != "a party in country X" || ai.From != "mediator" || bi.Label != "a party in country Y" || ai.Note != "you asked to be put in touch" {
		t.Fatalf("alice sees %+v, bob sees %+v", ai, bi)
	}
	if err := a.AnswerIntroduction(ai.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := b.AnswerIntroduction(bi.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b} {
		waitUntil(t, c, time.Minute, "the introduction to complete", func() bool { return introductionState(t, c).State == "done" })
	}
	// The introduced know each other only by the labels.
	if err := a.Verify("a party in country X"); err != nil {
		t.Fatalf("alice's new contact: %v (contacts %+v)", err, a.Contacts())
	}
	if _, err := a.Send("a party in country X", Content{Kind: Text, Body: []byte("end to end now")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, b, time.Minute, "alice's message", func() bool { inbox, _ := b.Inbox(); return len(inbox) == 1 })
	inbox, _ := b.Inbox()
	if inbox[0].Contact != "a party in country Y" || inbox[0].Text != "end to end now" {
		t.Fatalf("bob's inbox: %+v", inbox)
	}
	// The intermediary holds no session with either for their talk: it
	// never sees their messages (they are sealed to each other).
	if s := i.Stats(); s.MessagesReceived != 2 {
		t.Fatalf("the intermediary received %d messages, want its 2 answers", s.MessagesReceived)
	}
}

// TestIntroductionDeclined: bob declines. No contact is formed, and alice's
// view is the same as if bob had not answered at all: her introduction
// stays "accepted" and no message reaches her after her own answer.
func TestIntroductionDeclined(t *testing.T) {
	_, i, a, b := trio(t)
	if _, err := i.Introduce("alice", "bob", "X", "Y", ""); err != nil {
		t.Fatal(err)
	}
	ai, bi := waitIntroduced(t, a), waitIntroduced(t, b)
	if err := a.AnswerIntroduction(ai.ID, true); err != nil {
		t.Fatal(err)
	}
	before := a.Stats().MessagesReceived
	if err := b.AnswerIntroduction(bi.ID, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, i, time.Minute, "both answers at the intermediary", func() bool {
		return i.Stats().MessagesReceived == 2
	})
	// Everything the intermediary sent is delivered: nothing more is on
	// its way to alice.
	waitUntil(t, i, time.Minute, "the intermediary's messages delivered", func() bool { return countStatus(i, Delivered) == len(i.Outbox()) })
	if got := a.Stats().MessagesReceived; got != before {
		t.Fatalf("alice received %d messages after answering", got-before)
	}
	if st := introductionState(t, a).State; st != "accepted" {
		t.Fatalf("alice's introduction is %q", st)
	}
	if len(a.Contacts()) != 1 || len(b.Contacts()) != 1 {
		t.Fatalf("a contact was formed: alice %+v, bob %+v", a.Contacts(), b.Contacts())
	}
	if err := a.AnswerIntroduction(ai.ID, false); err == nil {
		t.Fatal("answered twice")
	}
}

func TestConveyedMessagesAndReceipts(t *testing.T) {
	_, i, a, b := trio(t)
	signedID, err := a.Convey("mediator", "the party in country Y", "we accept the venue", convey.SignedReceipt)
	if err != nil {
		t.Fatal(err)
	}
	deniableID, err := a.Convey("mediator", "the party in country Y", "yes", convey.DeniableReceipt)
	if err != nil {
		t.Fatal(err)
	}
	refusedID, err := a.Convey("mediator", "the party in country Y", "an insult", convey.SignedReceipt)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, i, time.Minute, "three messages on the desk", func() bool { d, _ := i.Desk(); return len(d) == 3 })
	desk, _ := i.Desk()
	for _, e := range desk {
		var err error
		switch e.Text {
		case "an insult":
			err = i.Refuse(e.ID, "I will not pass this on")
		default:
			err = i.PassOn(e.ID, "bob", "a party in country X", "passed on unchanged")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, b, time.Minute, "two conveyed messages", func() bool { in, _ := b.Inbox(); return len(in) == 2 })
	waitUntil(t, a, time.Minute, "three outcomes", func() bool {
		list, _ := a.Conveyances()
		done := 0
		for _, c := range list {
			if c.State != "sent" {
				done++
			}
		}
		return done == 3
	})
	list, _ := a.Conveyances()
	states := map[string]ConveyInfo{}
	for _, c := range list {
		states[c.ID] = c
	}
	if states[refusedID].State != "refused" || states[refusedID].Note != "I will not pass this on" || states[refusedID].Receipt != nil {
		t.Fatalf("refused: %+v", states[refusedID])
	}
	mediatorKey := i.Self().SigningKey
	proof, err := a.Proof(signedID)
	if err != nil {
		t.Fatal(err)
	}
	card, _ := identity.ParseCard(proof.Card)
	if err := proof.Receipt.Verify(proof.Text, proof.Salt, card.SigningKey); err != nil || !card.SigningKey.Equal(mediatorKey) {
		t.Fatalf("a third party cannot verify the signed receipt: %v", err)
	}
	if proof.Receipt.To != "the party in country Y" {
		t.Fatalf("receipt label %q", proof.Receipt.To)
	}
	deniable, err := a.Proof(deniableID)
	if err != nil {
		t.Fatal(err)
	}
	if !deniable.Receipt.Matches("yes", deniable.Salt) {
		t.Fatal("the deniable receipt does not name the message")
	}
	if err := deniable.Receipt.Verify(deniable.Text, deniable.Salt, mediatorKey); !errors.Is(err, convey.ErrNotSigned) {
		t.Fatalf("a third party verified a deniable receipt: %v", err)
	}
	// Bob sees where the messages came from, and answers the same way.
	inbox, _ := b.Inbox()
	for _, m := range inbox {
		if !m.Conveyed || m.Contact != "mediator" || m.Label != "a party in country X" || m.Note != "passed on unchanged" {
			t.Fatalf("bob's conveyed message: %+v", m)
		}
	}
	if _, err := b.ReplyConveyed(inbox[0].ID, "agreed", convey.NoReceipt); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, i, time.Minute, "bob's answer on the desk", func() bool { d, _ := i.Desk(); return len(d) == 4 })
	desk, _ = i.Desk()
	if desk[0].ReplyTo != "alice" {
		t.Fatalf("the answer is not shown as one to alice: %+v", desk[0])
	}
	if err := i.PassOn(desk[0].ID, "", "the party in country Y", ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, a, time.Minute, "bob's answer at alice", func() bool { in, _ := a.Inbox(); return len(in) == 1 })
	in, _ := a.Inbox()
	if in[0].Text != "agreed" || in[0].Label != "the party in country Y" {
		t.Fatalf("alice's inbox: %+v", in)
	}
}

// TestMutualInterestCheck plays the four combinations of answers through
// the clients over the network.
func TestMutualInterestCheck(t *testing.T) {
	n := startNetwork(t, fastParameters())
	a := n.newClient(t, "alice", "provider-a", Config{})
	b := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, a, "alice", b, "bob")
	run(t, a)
	run(t, b)
	if _, err := a.Ask("bob", "open to talks?", interest.Yes, time.Second); err == nil {
		t.Fatal("asked before any session existed")
	}
	if _, err := a.Send("bob", Content{Kind: Text, Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, a, time.Minute, "the session", func() bool { return countStatus(a, Delivered) == 1 })
	// The four checks run at once: each waits out its deadline, which is
	// long enough that a loaded machine delivers the question before it.
	cases := []struct {
		asker, asked interest.Answer
		want         interest.Result
	}{
		{interest.Yes, interest.Yes, interest.Match},
		{interest.Yes, interest.No, interest.NoMatch},
		{interest.No, interest.Yes, interest.NoMatch},
		{interest.Yes, interest.Undecided, interest.NoMatch},
	}
	ids := map[string]int{}
	for k, tc := range cases {
		id, err := a.Ask("bob", fmt.Sprintf("question %d: open to talks?", k), tc.asker, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = k
	}
	waitUntil(t, b, time.Minute, "the questions at bob", func() bool { l, _ := b.Checks(); return len(l) == len(cases) })
	for id, k := range ids {
		if cases[k].asked != interest.Undecided {
			if err := b.AnswerCheck(id, cases[k].asked); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []*Client{a, b} {
		waitUntil(t, c, time.Minute, "the checks' results", func() bool {
			l, _ := c.Checks()
			for _, ch := range l {
				if ch.Result == interest.Pending.String() {
					return false
				}
			}
			return true
		})
		l, _ := c.Checks()
		for _, ch := range l {
			tc := cases[ids[ch.ID]]
			if ch.Result != tc.want.String() || ch.Question != fmt.Sprintf("question %d: open to talks?", ids[ch.ID]) {
				t.Fatalf("asker %v, asked %v: %+v", tc.asker, tc.asked, ch)
			}
		}
	}
}

// TestDisappearingMessages: alice makes her conversation with bob
// disappear after two seconds. Bob's client adopts the setting (and tells
// him) whatever order the network delivers it in, and every message of the
// conversation goes from both clients' state when its time is up — while
// an earlier message, sent before, stays.
func TestDisappearingMessages(t *testing.T) {
	n := startNetwork(t, fastParameters())
	a := n.newClient(t, "alice", "provider-a", Config{})
	b := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, a, "alice", b, "bob")
	run(t, a)
	run(t, b)
	if _, err := a.Send("bob", Content{Kind: Text, Body: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetExpiry("bob", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send("bob", Content{Kind: Text, Body: []byte("gone soon")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, b, time.Minute, "both messages and the setting at bob", func() bool {
		in, _ := b.Inbox()
		return len(in) == 2 && b.Contacts()[0].Expiry == 2*time.Second
	})
	if c := b.Contacts()[0]; c.Notice == "" {
		t.Fatalf("bob was not told: %+v", c)
	}
	if _, err := b.Send("alice", Content{Kind: Text, Body: []byte("also gone soon")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, a, time.Minute, "bob's answer at alice", func() bool { in, _ := a.Inbox(); return len(in) == 1 })
	texts := func(c *Client) int {
		n := 0
		for _, m := range c.Outbox() {
			if m.Kind == Text.String() {
				n++
			}
		}
		return n
	}
	waitUntil(t, a, time.Minute, "alice's disappearing messages gone", func() bool {
		in, _ := a.Inbox()
		return len(in) == 0 && texts(a) == 1
	})
	waitUntil(t, b, time.Minute, "bob's disappearing messages gone", func() bool {
		in, _ := b.Inbox()
		return len(in) == 1 && texts(b) == 0
	})
	in, _ := b.Inbox()
	if in[0].Text != "kept" {
		t.Fatalf("bob kept %q", in[0].Text)
	}
	labels, _ := b.store.dir.Labels(inRecords.prefix)
	if len(labels) != 1 {
		t.Fatalf("bob's vault holds %d messages", len(labels))
	}
}

// TestMalformedControlMessageIsRefused: a contact's client sends control
// messages that do not decode (of every kind); each is refused with an
// error counted at the receiver, acknowledged so that it is not sent again,
// and the session goes on: a text after them arrives.
func TestMalformedControlMessageIsRefused(t *testing.T) {
	n := startNetwork(t, fastParameters())
	a := n.newClient(t, "alice", "provider-a", Config{})
	b := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, a, "alice", b, "bob")
	run(t, a)
	run(t, b)
	kinds := []ContentKind{Introduction, Conveyance, InterestCheck, ExpirySetting}
	a.mu.Lock()
	for _, k := range kinds {
		if _, err := a.queueControl(a.byName("bob"), k, []byte{9, 9, 9}); err != nil {
			a.mu.Unlock()
			t.Fatal(err)
		}
	}
	a.mu.Unlock()
	if _, err := a.Send("bob", Content{Kind: Text, Body: []byte("still talking")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, a, time.Minute, "everything acknowledged", func() bool { return countStatus(a, Delivered) == len(kinds)+1 })
	waitUntil(t, b, time.Minute, "the text", func() bool { in, _ := b.Inbox(); return len(in) == 1 })
	if got := b.Stats().Refused; got != uint64(len(kinds)) {
		t.Fatalf("bob refused %d messages, want %d", got, len(kinds))
	}
}
