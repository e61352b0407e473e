package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// firstField returns the first word of the first line of out that contains
// all of the given strings.
func firstField(t *testing.T, out string, contains ...string) string {
	t.Helper()
lines:
	for _, line := range strings.Split(out, "\n") {
		for _, c := range contains {
			if !strings.Contains(line, c) {
				continue lines
			}
		}
		return strings.Fields(line)[0]
	}
	t.Fatalf("no line with %q in:\n%s", contains, out)
	return ""
}

// featuresAcrossProcesses runs the features between daemons driven by the
// command line, each feature's test with daemons of its own on one shared
// network, in parallel: they wait on the network far more than they
// compute. The network's providers must expire mailbox packets every
// 500 ms (the disappearing messages' test needs it; the others' packets
// live for days). TestRecordedTrafficAfterX25519Falls runs them, as the
// conversation its adversary records.
func featuresAcrossProcesses(t *testing.T, nw *network) {
	for name, test := range map[string]func(*testing.T, *network){
		"introductions": introductionsAcrossProcesses,
		"convey":        conveyAcrossProcesses,
		"interest":      mutualInterestAcrossProcesses,
		"disappearing":  disappearingAcrossProcesses,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, nw)
		})
	}
}

// mediatorOn makes a mediator who knows each of the given parties, all
// daemons driven by the command line.
func mediatorOn(t *testing.T, nw *network, parties ...string) (*clientProc, map[string]*clientProc) {
	t.Helper()
	mediator := nw.newClient(t, "mediator", "provider-a")
	others := map[string]*clientProc{}
	for i, name := range parties {
		others[name] = nw.newClient(t, name, []string{"provider-a", "provider-b"}[i%2])
		befriend(mediator, others[name])
	}
	return mediator, others
}

// introductionsAcrossProcesses: the mediator introduces alice to bob
// (both accept: they become contacts under the labels and talk end to end)
// and alice to carol (carol declines: no contact on either side, and alice
// sees exactly what she would see had carol not answered).
func introductionsAcrossProcesses(t *testing.T, nw *network) {
	mediator, p := mediatorOn(t, nw, "alice", "bob", "carol")
	alice, bob, carol := p["alice"], p["bob"], p["carol"]
	mediator.cli("introduce", "--label-for-a", "a party in country X", "--label-for-b", "a party in country Y", "--note", "as discussed", "alice", "bob")
	mediator.cli("introduce", "--label-for-a", "a party in country Z", "--label-for-b", "a party in country Y", "alice", "carol")

	out := alice.cli("intro", "list", "--wait", "2")
	alice.cli("intro", "accept", firstField(t, out, "country X"))
	alice.cli("intro", "accept", firstField(t, out, "country Z"))
	bob.cli("intro", "accept", firstField(t, bob.cli("intro", "list", "--wait", "1"), "country Y"))
	carol.cli("intro", "decline", firstField(t, carol.cli("intro", "list", "--wait", "1"), "country Y"))

	alice.cli("intro", "list", "--wait-done", "1")
	bob.cli("intro", "list", "--wait-done", "1")
	// Everything the mediator sent has been delivered, so nothing more
	// will reach alice about carol.
	mediator.cli("status", "--wait")
	out = alice.cli("intro", "list")
	if !strings.Contains(out, `"a party in country Z": accepted`) || !strings.Contains(out, `"a party in country X": done`) {
		t.Fatalf("alice's introductions:\n%s", out)
	}
	if contacts := alice.cli("contact", "list"); strings.Contains(contacts, "country Z") || !strings.Contains(contacts, "a party in country X") {
		t.Fatalf("alice's contacts:\n%s", contacts)
	}
	if contacts := carol.cli("contact", "list"); strings.Contains(contacts, "country Y") {
		t.Fatalf("carol's contacts:\n%s", contacts)
	}
	alice.cli("send", "a party in country X", "we are ready to talk")
	alice.cli("status", "--wait")
	texts := bob.inboxTexts(t.TempDir())
	if texts["we are ready to talk"] != 1 {
		t.Fatalf("bob's inbox: %v", texts)
	}
}

// conveyAcrossProcesses: alice writes to bob through the mediator,
// asking for a signed receipt, a deniable one, and for a message the
// mediator refuses. A third party checks the signed receipt against the
// mediator's card with the command line; the deniable one does not pass.
// Bob answers through the mediator.
func conveyAcrossProcesses(t *testing.T, nw *network) {
	mediator, p := mediatorOn(t, nw, "alice", "bob")
	alice, bob := p["alice"], p["bob"]
	signed := firstField(t, alice.cli("convey", "send", "--to", "the party in country Y", "--receipt", "signed", "mediator", "we accept the venue"))
	deniable := firstField(t, alice.cli("convey", "send", "--to", "the party in country Y", "--receipt", "deniable", "mediator", "yes"))
	alice.cli("convey", "send", "--to", "the party in country Y", "--receipt", "signed", "mediator", "an insult")

	desk := mediator.cli("desk", "list", "--wait", "3")
	mediator.cli("desk", "pass", "--to", "bob", "--as", "a party in country X", "--note", "unchanged", firstField(t, desk, "we accept the venue"))
	mediator.cli("desk", "pass", "--to", "bob", "--as", "a party in country X", firstField(t, desk, `"yes"`))
	mediator.cli("desk", "refuse", "--note", "I will not pass this on", firstField(t, desk, "an insult"))

	out := alice.cli("convey", "list", "--wait", "3")
	if !strings.Contains(out, "refused") || !strings.Contains(out, "I will not pass this on") || strings.Count(out, "receipt: conveyed to") != 2 {
		t.Fatalf("alice's conveyances:\n%s", out)
	}
	dir := t.TempDir()
	card := filepath.Join(dir, "mediator.card")
	os.WriteFile(card, []byte(mediator.cli("card")), 0o600)
	for name, id := range map[string]string{"signed": signed, "deniable": deniable} {
		file := filepath.Join(dir, name+".receipt")
		os.WriteFile(file, []byte(alice.cli("convey", "receipt", id)), 0o600)
		verdict, err := alice.try("receipt", "verify", "--card", card, file)
		switch {
		case name == "signed" && (err != nil || !strings.Contains(verdict, "valid")):
			t.Fatalf("a third party cannot check the signed receipt: %v\n%s", err, verdict)
		case name == "deniable" && (err == nil || !strings.Contains(verdict, "deniable")):
			t.Fatalf("a deniable receipt passed a third party's check: %v\n%s", err, verdict)
		}
		t.Logf("%s receipt: %s", name, strings.TrimSpace(verdict))
	}

	inbox := bob.cli("inbox", "--wait", "2")
	if !strings.Contains(inbox, "via mediator") || !strings.Contains(inbox, "a party in country X") {
		t.Fatalf("bob's inbox does not show the conveyance:\n%s", inbox)
	}
	bob.cli("convey", "reply", firstField(t, inbox, "we accept the venue"), "agreed")
	desk = mediator.cli("desk", "list", "--wait", "4")
	mediator.cli("desk", "pass", "--as", "the party in country Y", firstField(t, desk, "an answer for alice"))
	if out := alice.cli("inbox", "--wait", "1"); !strings.Contains(out, "agreed") {
		t.Fatalf("alice's inbox:\n%s", out)
	}
}

// mutualInterestAcrossProcesses plays the four combinations of answers
// between two daemons.
func mutualInterestAcrossProcesses(t *testing.T, nw *network) {
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	alice.cli("send", "bob", "hello")
	alice.cli("status", "--wait")
	// The four checks run at once: each waits out its deadline, long
	// enough that a loaded machine delivers the question before it.
	cases := []struct{ asker, asked, want string }{
		{"yes", "yes", "match: both said yes"},
		{"yes", "no", "no match"},
		{"no", "yes", "no match"},
		{"no", "no", "no match"},
	}
	for i, tc := range cases {
		alice.cli("check", "ask", "--answer", tc.asker, "--within", "20s", "bob", fmt.Sprintf("question %d: open to talks?", i))
	}
	list := bob.cli("check", "list", "--wait", fmt.Sprint(len(cases)))
	ids := make([]string, len(cases))
	for i, tc := range cases {
		ids[i] = firstField(t, list, fmt.Sprintf("question %d:", i))
		bob.cli("check", "answer", ids[i], tc.asked)
	}
	for _, c := range []*clientProc{alice, bob} {
		out := c.cli("check", "list", "--wait-done", fmt.Sprint(len(cases)))
		for i, tc := range cases {
			line := out[strings.Index(out, ids[i]):]
			line = line[:strings.Index(line, "\n")]
			if !strings.HasSuffix(line, "; "+tc.want) {
				t.Fatalf("asker %s, asked %s: %s sees %s", tc.asker, tc.asked, c.name, line)
			}
		}
	}
}

// wait asks a client's daemon to wait until the condition holds.
func (c *clientProc) wait(until string, count int) {
	c.t.Helper()
	if err := control.Call(filepath.Join(c.dir, "control.sock"), &control.WaitRequest{Until: until, Count: count, Timeout: time.Minute}, nil); err != nil {
		c.t.Fatalf("%s: waiting until %s %d: %v", c.name, until, count, err)
	}
}

// disappearingAcrossProcesses: alice makes her conversation with bob
// disappear after 3 seconds. The messages go from both clients' state when
// their time is up; and what reaches bob's provider while bob is offline is
// removed there after 3 s (bob's client asked for the short retention).
func disappearingAcrossProcesses(t *testing.T, nw *network) {
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	if out := alice.cli("contact", "expire", "bob", "3s"); !strings.Contains(out, "messages with bob now disappear 3s") || strings.Count(out, "\n") != 1 {
		t.Fatalf("contact expire does not confirm the setting in a line:\n%s", out)
	}
	alice.cli("send", "bob", "this will disappear")
	bob.cli("inbox", "--wait", "1")
	// The setting goes in a message of its own, which may arrive after the
	// text: once alice's outbox is settled bob has acknowledged it, and a
	// client acknowledges only what it has stored and acted on.
	alice.wait("settled", 0)
	if out := bob.cli("contact", "list"); !strings.Contains(out, "disappear 3s") {
		t.Fatalf("bob's client did not adopt the expiry:\n%s", out)
	}
	alice.wait("outbox-at-most", 0)
	bob.wait("inbox-at-most", 0)
	// Bob's client has asked its provider for the short retention. He goes
	// offline; alice writes; each copy she sends waits in his mailbox at
	// most 3 s before the provider removes it (her client goes on
	// retransmitting, as for any message not yet delivered).
	before := nw.counter("backchannel_mailbox_expired_total", "", "provider-b")
	bob.stop()
	alice.cli("send", "bob", "waiting for bob")
	waitCounter(t, nw, "provider-b", "backchannel_mailbox_expired_total", before+1)
}
