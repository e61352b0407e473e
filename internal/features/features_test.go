package features_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/features/intro"
	"github.com/backchannel/backchannel/internal/tools/clienttest"
)

// party is a running client with its features.
type party struct {
	c   *client.Client
	f   *features.Set
	dir string
}

func newParty(t *testing.T, n *clienttest.Network, name, provider string) *party {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	c := n.NewClient(t, name, provider, client.Config{Dir: dir})
	f, err := features.Register(c, features.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &party{c: c, f: f, dir: dir}
}

// trio starts a network and three running clients: an intermediary who
// knows both, and two parties who know only the intermediary.
func trio(t *testing.T) (i, a, b *party) {
	t.Helper()
	n := clienttest.StartNetwork(t, clienttest.FastParameters())
	i = newParty(t, n, "mediator", "provider-a")
	a = newParty(t, n, "alice", "provider-a")
	b = newParty(t, n, "bob", "provider-b")
	clienttest.Introduce(t, i.c, "mediator", a.c, "alice")
	clienttest.Introduce(t, i.c, "mediator", b.c, "bob")
	for _, p := range []*party{i, a, b} {
		clienttest.Run(t, p.c)
	}
	return i, a, b
}

// pair starts a network and two running clients who know each other.
func pair(t *testing.T) (a, b *party) {
	t.Helper()
	n := clienttest.StartNetwork(t, clienttest.FastParameters())
	a = newParty(t, n, "alice", "provider-a")
	b = newParty(t, n, "bob", "provider-b")
	clienttest.Introduce(t, a.c, "alice", b.c, "bob")
	clienttest.Run(t, a.c)
	clienttest.Run(t, b.c)
	return a, b
}

// vaultEntries counts the vault's files of one kind of entry (labels are
// written in hex).
func vaultEntries(t *testing.T, p *party, prefix string) int {
	t.Helper()
	names, err := os.ReadDir(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range names {
		if strings.HasPrefix(e.Name(), hex.EncodeToString([]byte(prefix))) && strings.HasSuffix(e.Name(), ".entry") {
			n++
		}
	}
	return n
}

func introductionState(t *testing.T, p *party) intro.Info {
	t.Helper()
	list, err := p.f.Intro.Introductions()
	if err != nil || len(list) != 1 {
		t.Fatalf("introductions %+v, %v", list, err)
	}
	return list[0]
}

func waitIntroduced(t *testing.T, p *party) intro.Info {
	t.Helper()
	clienttest.WaitUntil(t, p.c, time.Minute, "an introduction", func() bool {
		list, _ := p.f.Intro.Introductions()
		return len(list) == 1
	})
	return introductionState(t, p)
}

// saysWhatItIs checks that every message of a feature in p's outbox says
// what it is (for `status`), and that each of wants is said of one.
func saysWhatItIs(t *testing.T, p *party, wants ...string) {
	t.Helper()
	var abouts []string
	for _, m := range p.c.Outbox() {
		if m.Kind == client.Text.String() || m.Kind == client.File.String() {
			continue
		}
		if m.About == "" {
			t.Errorf("a %s message does not say what it is: %+v", m.Kind, m)
		}
		abouts = append(abouts, m.About)
	}
	for _, w := range wants {
		if !strings.Contains(strings.Join(abouts, "\n"), w) {
			t.Errorf("no message says %q; they say:\n%s", w, strings.Join(abouts, "\n"))
		}
	}
}

func TestIntroduction(t *testing.T) {
	i, a, b := trio(t)
	if _, err := i.f.Intro.Introduce("alice", "bob", "a party in country X", "a party in country Y", "you asked to be put in touch"); err != nil {
		t.Fatal(err)
	}
	ai, bi := waitIntroduced(t, a), waitIntroduced(t, b)
	if ai.Label != "a party in country X" || ai.From != "mediator" || bi.Label != "a party in country Y" || ai.Note != "you asked to be put in touch" {
		t.Fatalf("alice sees %+v, bob sees %+v", ai, bi)
	}
	if err := a.f.Intro.Answer(ai.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := b.f.Intro.Answer(bi.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*party{a, b} {
		clienttest.WaitUntil(t, c.c, time.Minute, "the introduction to complete", func() bool { return introductionState(t, c).State == "done" })
	}
	// The introduced know each other only by the labels.
	if err := a.c.Verify("a party in country X"); err != nil {
		t.Fatalf("alice's new contact: %v (contacts %+v)", err, a.c.Contacts())
	}
	if _, err := a.c.Send("a party in country X", client.Content{Kind: client.Text, Body: []byte("end to end now")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, b.c, time.Minute, "alice's message", func() bool { inbox, _ := b.c.Inbox(); return len(inbox) == 1 })
	inbox, _ := b.c.Inbox()
	if inbox[0].Contact != "a party in country Y" || inbox[0].Text != "end to end now" {
		t.Fatalf("bob's inbox: %+v", inbox)
	}
	// The intermediary holds no session with either for their talk: it
	// never sees their messages (they are sealed to each other).
	if s := i.c.Stats(); s.MessagesReceived != 2 {
		t.Fatalf("the intermediary received %d messages, want its 2 answers", s.MessagesReceived)
	}
	saysWhatItIs(t, i, `introduction to "a party in country X"`, "introduction complete: both accepted")
	saysWhatItIs(t, a, `introduction accepted: "a party in country X"`)
}

// TestIntroductionDeclined: bob declines. No contact is formed, and alice's
// view is the same as if bob had not answered at all: her introduction
// stays "accepted" and no message reaches her after her own answer.
func TestIntroductionDeclined(t *testing.T) {
	i, a, b := trio(t)
	if _, err := i.f.Intro.Introduce("alice", "bob", "X", "Y", ""); err != nil {
		t.Fatal(err)
	}
	ai, bi := waitIntroduced(t, a), waitIntroduced(t, b)
	if err := a.f.Intro.Answer(ai.ID, true); err != nil {
		t.Fatal(err)
	}
	before := a.c.Stats().MessagesReceived
	if err := b.f.Intro.Answer(bi.ID, false); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, i.c, time.Minute, "both answers at the intermediary", func() bool {
		return i.c.Stats().MessagesReceived == 2
	})
	// Everything the intermediary sent is delivered: nothing more is on
	// its way to alice.
	clienttest.WaitUntil(t, i.c, time.Minute, "the intermediary's messages delivered", func() bool { return clienttest.CountStatus(i.c, client.Delivered) == len(i.c.Outbox()) })
	if got := a.c.Stats().MessagesReceived; got != before {
		t.Fatalf("alice received %d messages after answering", got-before)
	}
	if st := introductionState(t, a).State; st != "accepted" {
		t.Fatalf("alice's introduction is %q", st)
	}
	if len(a.c.Contacts()) != 1 || len(b.c.Contacts()) != 1 {
		t.Fatalf("a contact was formed: alice %+v, bob %+v", a.c.Contacts(), b.c.Contacts())
	}
	if err := a.f.Intro.Answer(ai.ID, false); err == nil {
		t.Fatal("answered twice")
	}
}

func TestConveyedMessagesAndReceipts(t *testing.T) {
	i, a, b := trio(t)
	signedID, err := a.f.Convey.Convey("mediator", "the party in country Y", "we accept the venue", convey.SignedReceipt)
	if err != nil {
		t.Fatal(err)
	}
	deniableID, err := a.f.Convey.Convey("mediator", "the party in country Y", "yes", convey.DeniableReceipt)
	if err != nil {
		t.Fatal(err)
	}
	refusedID, err := a.f.Convey.Convey("mediator", "the party in country Y", "an insult", convey.SignedReceipt)
	if err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, i.c, time.Minute, "three messages on the desk", func() bool { d, _ := i.f.Convey.Desk(); return len(d) == 3 })
	desk, _ := i.f.Convey.Desk()
	for _, e := range desk {
		var err error
		switch e.Text {
		case "an insult":
			err = i.f.Convey.Refuse(e.ID, "I will not pass this on")
		default:
			err = i.f.Convey.PassOn(e.ID, "bob", "a party in country X", "passed on unchanged")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	clienttest.WaitUntil(t, b.c, time.Minute, "two conveyed messages", func() bool { in, _ := b.c.Inbox(); return len(in) == 2 })
	clienttest.WaitUntil(t, a.c, time.Minute, "three outcomes", func() bool {
		list, _ := a.f.Convey.Conveyances()
		done := 0
		for _, c := range list {
			if c.State != "sent" {
				done++
			}
		}
		return done == 3
	})
	list, _ := a.f.Convey.Conveyances()
	states := map[string]convey.Info{}
	for _, c := range list {
		states[c.ID] = c
	}
	if states[refusedID].State != "refused" || states[refusedID].Note != "I will not pass this on" || states[refusedID].Receipt != nil {
		t.Fatalf("refused: %+v", states[refusedID])
	}
	mediatorKey := i.c.Self().SigningKey
	proof, err := a.f.Convey.Proof(signedID)
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
	deniable, err := a.f.Convey.Proof(deniableID)
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
	inbox, _ := b.c.Inbox()
	for _, m := range inbox {
		if !m.Conveyed || m.Contact != "mediator" || m.Label != "a party in country X" || m.Note != "passed on unchanged" {
			t.Fatalf("bob's conveyed message: %+v", m)
		}
	}
	if _, err := b.f.Convey.Reply(inbox[0].ID, "agreed", convey.NoReceipt); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, i.c, time.Minute, "bob's answer on the desk", func() bool { d, _ := i.f.Convey.Desk(); return len(d) == 4 })
	desk, _ = i.f.Convey.Desk()
	if desk[0].ReplyTo != "alice" {
		t.Fatalf("the answer is not shown as one to alice: %+v", desk[0])
	}
	if err := i.f.Convey.PassOn(desk[0].ID, "", "the party in country Y", ""); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "bob's answer at alice", func() bool { in, _ := a.c.Inbox(); return len(in) == 1 })
	in, _ := a.c.Inbox()
	if in[0].Text != "agreed" || in[0].Label != "the party in country Y" {
		t.Fatalf("alice's inbox: %+v", in)
	}
	saysWhatItIs(t, a, `to convey to "the party in country Y": "we accept the venue"`)
	saysWhatItIs(t, i, "conveyed message, passed on from", "conveyance receipt for")
}

// TestCheckAheadOfAFile: an interest check asked while a large file is
// being sent ends at its deadline with its result — its messages go out
// ahead of the file's fragments, which take longer than the check's whole
// time to answer.
func TestCheckAheadOfAFile(t *testing.T) {
	a, b := pair(t)
	if _, err := a.c.Send("bob", client.Content{Kind: client.Text, Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "the session", func() bool { return clienttest.CountStatus(a.c, client.Delivered) == 1 })
	// About 700 fragments of X-Wing packets: 17 s of send slots at the
	// network's 40 a second, well beyond the check's deadline and slack.
	fileID, err := a.c.Send("bob", client.Content{Kind: client.File, Name: "annex.bin", Body: make([]byte, 2<<20)})
	if err != nil {
		t.Fatal(err)
	}
	fileStatus := func() client.Status {
		for _, m := range a.c.Outbox() {
			if m.ID == fileID {
				return m.Status
			}
		}
		return ""
	}
	const within = 4 * time.Second
	id, err := a.f.Interest.Ask("bob", "open to talks?", interest.Yes, within)
	if err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	clienttest.WaitUntil(t, b.c, time.Minute, "the question at bob", func() bool { l, _ := b.f.Interest.Checks(); return len(l) == 1 })
	if err := b.f.Interest.AnswerCheck(id, interest.Yes); err != nil {
		t.Fatal(err)
	}
	result := func(p *party) string {
		l, _ := p.f.Interest.Checks()
		if len(l) != 1 {
			return ""
		}
		return l[0].Result
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "the check's end", func() bool { return result(a) != interest.Pending.String() })
	ended := time.Since(asked)
	fileDelivered := fileStatus() == client.Delivered
	// The slack is for a loaded machine (the suite's other packages run
	// beside this one, under the race detector): 3 s ran out once, and
	// alone it took up to 3.6 s; the file needs 17 s of slots at least.
	if got := result(a); got != interest.Match.String() || ended > within+8*time.Second {
		t.Fatalf("the check ended %v after it was asked (%v to answer), with %q", ended, within, got)
	}
	if fileDelivered {
		t.Fatal("the file was delivered before the check ended: nothing was ahead of the check")
	}
	t.Logf("the check ended %v after it was asked (%v to answer), the file still on its way", ended.Round(time.Millisecond), within)
	clienttest.WaitUntil(t, b.c, time.Minute, "the check's end at bob", func() bool { return result(b) == interest.Match.String() })
	clienttest.WaitUntil(t, a.c, 2*time.Minute, "the file", func() bool { return fileStatus() == client.Delivered })
}

// TestMutualInterestCheck plays the four combinations of answers through
// the clients over the network.
func TestMutualInterestCheck(t *testing.T) {
	a, b := pair(t)
	if _, err := a.f.Interest.Ask("bob", "open to talks?", interest.Yes, time.Second); err == nil {
		t.Fatal("asked before any session existed")
	}
	if _, err := a.c.Send("bob", client.Content{Kind: client.Text, Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "the session", func() bool { return clienttest.CountStatus(a.c, client.Delivered) == 1 })
	// The four checks run at once: each waits out its deadline, which is
	// long enough that a loaded machine delivers the question before it
	// (20 s was not, once, with the suite's other packages and X-Wing
	// packets under the race detector).
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
		id, err := a.f.Interest.Ask("bob", fmt.Sprintf("question %d: open to talks?", k), tc.asker, 45*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = k
	}
	saysWhatItIs(t, a, `interest check asked: "question 0: open to talks?"`)
	clienttest.WaitUntil(t, b.c, time.Minute, "the questions at bob", func() bool { l, _ := b.f.Interest.Checks(); return len(l) == len(cases) })
	for id, k := range ids {
		if cases[k].asked != interest.Undecided {
			if err := b.f.Interest.AnswerCheck(id, cases[k].asked); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []*party{a, b} {
		clienttest.WaitUntil(t, c.c, time.Minute, "the checks' results", func() bool {
			l, _ := c.f.Interest.Checks()
			for _, ch := range l {
				if ch.Result == interest.Pending.String() {
					return false
				}
			}
			return true
		})
		l, _ := c.f.Interest.Checks()
		for _, ch := range l {
			tc := cases[ids[ch.ID]]
			if ch.Result != tc.want.String() || ch.Question != fmt.Sprintf("question %d: open to talks?", ids[ch.ID]) {
				t.Fatalf("asker %v, asked %v: %+v", tc.asker, tc.asked, ch)
			}
		}
	}
	saysWhatItIs(t, b, "interest check, a step of the protocol: ")
}

// TestDisappearingMessages: alice makes her conversation with bob
// disappear after two seconds. Bob's client adopts the setting (and tells
// him) whatever order the network delivers it in, and every message of the
// conversation goes from both clients' state when its time is up — while
// an earlier message, sent before, stays.
func TestDisappearingMessages(t *testing.T) {
	a, b := pair(t)
	if _, err := a.c.Send("bob", client.Content{Kind: client.Text, Body: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	if err := a.f.Expiry.Set("bob", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	saysWhatItIs(t, a, "disappearing messages: after 2s")
	if _, err := a.c.Send("bob", client.Content{Kind: client.Text, Body: []byte("gone soon")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, b.c, time.Minute, "both messages and the setting at bob", func() bool {
		in, _ := b.c.Inbox()
		return len(in) == 2 && b.c.Contacts()[0].Expiry == 2*time.Second
	})
	if c := b.c.Contacts()[0]; c.Notice == "" {
		t.Fatalf("bob was not told: %+v", c)
	}
	if _, err := b.c.Send("alice", client.Content{Kind: client.Text, Body: []byte("also gone soon")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "bob's answer at alice", func() bool { in, _ := a.c.Inbox(); return len(in) == 1 })
	texts := func(c *party) int {
		n := 0
		for _, m := range c.c.Outbox() {
			if m.Kind == client.Text.String() {
				n++
			}
		}
		return n
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "alice's disappearing messages gone", func() bool {
		in, _ := a.c.Inbox()
		return len(in) == 0 && texts(a) == 1
	})
	clienttest.WaitUntil(t, b.c, time.Minute, "bob's disappearing messages gone", func() bool {
		in, _ := b.c.Inbox()
		return len(in) == 1 && texts(b) == 0
	})
	in, _ := b.c.Inbox()
	if in[0].Text != "kept" {
		t.Fatalf("bob kept %q", in[0].Text)
	}
	if n := vaultEntries(t, b, "in/"); n != 1 {
		t.Fatalf("bob's vault holds %d messages", n)
	}
}

// TestMalformedControlMessageIsRefused: a contact's client sends control
// messages that do not decode (of every kind); each is refused with an
// error counted at the receiver, acknowledged so that it is not sent again,
// and the session goes on: a text after them arrives.
func TestMalformedControlMessageIsRefused(t *testing.T) {
	a, b := pair(t)
	kinds := []client.ContentKind{client.Introduction, client.Conveyance, client.InterestCheck, client.ExpirySetting}
	err := a.c.Do(func(tx *client.Tx) error {
		bob, err := tx.Contact("bob")
		if err != nil {
			return err
		}
		for _, k := range kinds {
			if err := tx.Queue(bob, k, []byte{9, 9, 9}, client.Queuing{About: "a malformed message"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Send("bob", client.Content{Kind: client.Text, Body: []byte("still talking")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, a.c, time.Minute, "everything acknowledged", func() bool { return clienttest.CountStatus(a.c, client.Delivered) == len(kinds)+1 })
	clienttest.WaitUntil(t, b.c, time.Minute, "the text", func() bool { in, _ := b.c.Inbox(); return len(in) == 1 })
	if got := b.c.Stats().Refused; got != uint64(len(kinds)) {
		t.Fatalf("bob refused %d messages, want %d", got, len(kinds))
	}
}

// TestReadsDoNotWaitForTheClient holds the client's lock (as the schedule
// does while it builds and stores a packet) and checks that the features'
// lists still answer: they read the vault and the client's view.
func TestReadsDoNotWaitForTheClient(t *testing.T) {
	i, a, _ := trio(t)
	if _, err := i.f.Intro.Introduce("alice", "bob", "X", "Y", ""); err != nil {
		t.Fatal(err)
	}
	waitIntroduced(t, a)
	held, release := make(chan struct{}), make(chan struct{})
	go a.c.Do(func(*client.Tx) error { close(held); <-release; return nil })
	<-held
	defer close(release)
	reads := map[string]func() error{
		"introductions": func() error { _, err := a.f.Intro.Introductions(); return err },
		"checks":        func() error { _, err := a.f.Interest.Checks(); return err },
		"desk":          func() error { _, err := a.f.Convey.Desk(); return err },
		"conveyances":   func() error { _, err := a.f.Convey.Conveyances(); return err },
		"contacts":      func() error { a.c.Contacts(); _, err := a.c.Inbox(); return err },
	}
	for name, read := range reads {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waited for the client's lock", name)
		}
	}
}
