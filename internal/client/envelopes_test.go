package client

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// payloadOf returns what a packet's last hop stores in the mailbox.
func payloadOf(t *testing.T, p offlinePair, packet []byte) []byte {
	t.Helper()
	payload, _ := unwrapPath(t, p, packet, func(*directory.Node) {})
	return payload
}

// recipientOf returns the mailbox a packet's last hop stores it in (zero
// for a drop packet, which none keeps).
func recipientOf(t *testing.T, p offlinePair, packet []byte) [sphinx.RecipientIDLength]byte {
	t.Helper()
	_, last := unwrapPath(t, p, packet, func(*directory.Node) {})
	for _, c := range last {
		if r, ok := c.(sphinx.Recipient); ok {
			return r.ID
		}
	}
	return [sphinx.RecipientIDLength]byte{}
}

// withBob opens bob's side of an offline pair, with alice as a contact.
func withBob(t *testing.T, p offlinePair) *Client {
	t.Helper()
	bob, err := Open(p.bobCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bob.Close)
	if err := bob.AddContact("alice", p.alice.Self()); err != nil {
		t.Fatal(err)
	}
	if err := bob.useDocument(p.doc); err != nil {
		t.Fatal(err)
	}
	return bob
}

// formOf says which keys open a payload: "keyed" (a session's or the loop
// key), "sealed" (the prekeys) or "classical" (the identity key) of c.
func formOf(t *testing.T, c *Client, payload []byte) string {
	t.Helper()
	c.mu.Lock()
	keys, _ := c.openKeys()
	c.unlock()
	only := map[string]*envelope.Keys{
		"keyed":     {Keyed: keys.Keyed},
		"sealed":    {Prekeys: keys.Prekeys},
		"classical": {Identity: keys.Identity},
	}
	var opened []string
	for _, form := range []string{"keyed", "sealed", "classical"} {
		if _, err := envelope.Open(only[form], payload); err == nil {
			opened = append(opened, form)
		} else if !errors.Is(err, envelope.ErrOpen) {
			t.Fatalf("%s keys: %v", form, err)
		}
	}
	if len(opened) != 1 {
		t.Fatalf("the payload opens with %v", opened)
	}
	return opened[0]
}

// hello plans and builds alice's hello to a contact and returns its
// payload.
func hello(t *testing.T, p offlinePair, name string) []byte {
	t.Helper()
	ct := p.alice.byName(name)
	return payloadOf(t, p, planned(t, p.alice, func() (build, error) {
		return p.alice.planSessionPacket(ct, nil, nil, 0, p.clock.Now())
	}))
}

// fragmentsTo queues a text to bob and returns the payloads of the
// fragments due to him (the capabilities message may go first).
func fragmentsTo(t *testing.T, p offlinePair, text string) [][]byte {
	t.Helper()
	if _, err := p.alice.Send("bob", Content{Kind: Text, Body: []byte(text)}); err != nil {
		t.Fatal(err)
	}
	ct := p.alice.byName("bob")
	var out [][]byte
	for range 10 {
		packet := planned(t, p.alice, func() (build, error) {
			return p.alice.planFragment(p.clock.Now(), map[*contact]bool{ct: true}, false)
		})
		if packet == nil {
			return out
		}
		out = append(out, payloadOf(t, p, packet))
	}
	t.Fatal("more fragments due than the test sent")
	return nil
}

// inboxTexts returns the texts in c's inbox.
func inboxTexts(t *testing.T, c *Client) map[string]bool {
	t.Helper()
	in, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]bool{}
	for _, m := range in {
		texts[m.Text] = true
	}
	return texts
}

func receivePayload(c *Client, payload []byte, p offlinePair) {
	c.mu.Lock()
	c.receivePayload(payload, p.clock.Now())
	c.unlock()
}

func confirmed(t *testing.T, c *Client, name string) {
	t.Helper()
	ct := c.byName(name)
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.rec.Session == nil || !ct.rec.Session.Initiated {
		t.Fatalf("no session initiated with %s", name)
	}
	c.confirm(ct)
}

// TestEnvelopeForms follows the forms a conversation's payloads take
// (envelopes.go): the hello sealed to the contact's prekeys, what follows
// keyed with the session's envelope keys, loops of both forms, and the
// classical form to a contact whose card says its software opens nothing
// else.
func TestEnvelopeForms(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 70, aliceRand: testrand.New(70, 'a'), bobRand: testrand.New(70, 'b')})
	alice := p.alice
	bob := withBob(t, p)

	h := hello(t, p, "bob")
	if form := formOf(t, bob, h); form != "sealed" || h[0] != envelope.Version {
		t.Fatalf("the hello is %s (version %d), want sealed", form, h[0])
	}
	receivePayload(bob, h, p)
	if got := bob.byName("alice").shown.Load().state; got != "established" {
		t.Fatalf("bob's session after the hello: %s", got)
	}
	confirmed(t, alice, "bob")

	for _, f := range fragmentsTo(t, p, "keyed, not named") {
		// The session's envelope key opens it and nothing else of bob's
		// does; nothing in it names alice.
		if form := formOf(t, bob, f); form != "keyed" {
			t.Fatalf("a fragment in a confirmed session is %s, want keyed", form)
		}
		if bytes.Contains(f, alice.self.DHKey[:]) {
			t.Fatal("the keyed payload carries alice's identity key in the clear")
		}
		receivePayload(bob, f, p)
	}
	if in, _ := bob.Inbox(); len(in) != 1 || in[0].Text != "keyed, not named" || in[0].Contact != "alice" {
		t.Fatalf("bob's inbox: %+v", in)
	}

	forms := map[string]int{}
	for range 40 {
		loop := payloadOf(t, p, planned(t, alice, func() (build, error) { return alice.planLoop(p.clock.Now()) }))
		forms[formOf(t, alice, loop)]++
		receivePayload(alice, loop, p)
	}
	if forms["keyed"] < 8 || forms["sealed"] < 8 || alice.Stats().LoopsReturned != 40 {
		t.Fatalf("loops: %v, %d returned", forms, alice.Stats().LoopsReturned)
	}

	// A contact of the previous release: its card is of version 1.
	old, err := identity.Generate(testrand.New(70, 'c'), [32]byte(p.doc.Providers()[1].IdentityKey), [32]byte{7}, p.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.AddContact("carol", old.CardOfVersion(identity.CardVersionClassical)); err != nil {
		t.Fatal(err)
	}
	if h := hello(t, p, "carol"); h[0] != envelope.VersionClassical {
		t.Fatalf("a hello to a version 1 card is of envelope version %d, want %d", h[0], envelope.VersionClassical)
	}
}

// TestRekeyOldSessions: a session whose envelope keys one side lacks — set
// up before this release (neither side has them), or by this release with
// a contact on the previous one (only this side has them) — carries
// classical envelopes only; once the contact's software is known to open
// envelope version 2, it is set up again, the contact replaces its session
// with the new one, and the conversation goes on keyed.
func TestRekeyOldSessions(t *testing.T) {
	for _, onlyAlice := range []bool{false, true} {
		t.Run(fmt.Sprintf("keys on alice's side only: %v", onlyAlice), func(t *testing.T) {
			p := newOfflinePair(t, offline{seed: 71, aliceRand: testrand.New(71, 'a'), bobRand: testrand.New(71, 'b')})
			alice := p.alice
			bob := withBob(t, p)
			receivePayload(bob, hello(t, p, "bob"), p)
			confirmed(t, alice, "bob")
			sides := []*contact{bob.byName("alice")}
			if !onlyAlice {
				sides = append(sides, alice.byName("bob"))
			}
			for _, side := range sides {
				side.mu.Lock()
				side.sess.Envelope = session.EnvelopeKeys{}
				side.rec.Session.EnvelopeSend, side.rec.Session.EnvelopeReceive = nil, nil
				side.mu.Unlock()
			}
			ct := alice.byName("bob")
			ct.mu.Lock()
			ct.rec.Session.PeerKeyed = false // bob's software was not known to have them
			ct.mu.Unlock()
			// (Not delivered: what bob's side would do on alice's word
			// that she opens envelope version 2 is what alice does below.)
			for _, f := range fragmentsTo(t, p, "classical, for now") {
				if f[0] != envelope.VersionClassical {
					t.Fatalf("a session whose keys bob lacks carries envelope version %d", f[0])
				}
			}

			alice.mu.Lock()
			ct.mu.Lock()
			alice.rekeyIfOld(ct)
			ct.mu.Unlock()
			alice.unlock()
			if !ct.rec.Rekey || ct.sess != nil {
				t.Fatal("the session was not dropped for a new one")
			}
			receivePayload(bob, hello(t, p, "bob"), p)
			if b := bob.byName("alice"); !b.mutuallyKeyed() {
				t.Fatal("bob did not replace his session with the new one, keyed on both sides")
			}
			confirmed(t, alice, "bob")
			if ct.rec.Rekey || !ct.mutuallyKeyed() {
				t.Fatal("after the new session's confirmation alice is not keyed with bob")
			}
			// What went in the old session and was not acknowledged goes
			// again in the new one, keyed.
			for _, f := range fragmentsTo(t, p, "keyed again") {
				if form := formOf(t, bob, f); form != "keyed" {
					t.Fatalf("after the new session, a fragment is %s", form)
				}
				receivePayload(bob, f, p)
			}
			if texts := inboxTexts(t, bob); !texts["keyed again"] || !texts["classical, for now"] {
				t.Fatalf("bob's inbox: %v", texts)
			}
		})
	}
}

// TestPayloadAccounting gives the message bytes a packet carries, before
// the post-quantum envelopes (the previous release: classical envelopes,
// 2,048-byte payloads), in the X25519 format now (every packet keeps room
// for a SURB) and in the default X-Wing format (acks as forward packets:
// a 16-byte ack ID), for BENCHMARKS.md, and checks the target: an
// established session keeps at least 90% of the message bytes per packet
// it had, in the same geometry.
func TestPayloadAccounting(t *testing.T) {
	var in session.Initial
	initial, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	x25519Default := sphinx.Geometry{MaxHops: sphinx.DefaultGeometry.MaxHops, UserPayloadLength: sphinx.DefaultGeometry.UserPayloadLength, Scheme: sphinx.X25519}
	for _, g := range []sphinx.Geometry{legacyGeometry, x25519Default, sphinx.DefaultGeometry} {
		hello := session.EncryptedHeaderSize + 2 + session.SealOverhead
		// What the ack takes in a packet: a SURB and four length prefixes,
		// or an ack ID and three.
		ack, helloRoom := g.SURBLength()+4*2, envelope.SessionRoom(g.UserPayloadLength, g.SURBLength(), len(initial))
		if g.Scheme != sphinx.X25519 {
			ack, helloRoom = envelope.AckIDSize+3*2, envelope.MessageRoom(g.UserPayloadLength, len(initial))
		}
		sealedHello := helloRoom >= hello
		// Today's fragments are sized for the classical form (what a
		// contact of the previous release gets); before, every payload was.
		fragment := fragmentCapacity(g)
		keyedRoom := g.UserPayloadLength - envelope.KeyedOverhead - 1 - ack - session.EncryptedHeaderSize - session.SealOverhead - 1
		t.Logf("%v: a fragment carries %d message bytes (%.1f%% of the packet; the keyed form has room for %d); a hello sealed with X-Wing fits: %v",
			g, fragment, 100*float64(fragment)/float64(g.PacketLength()), keyedRoom, sealedHello)
		if keyedRoom < fragment {
			t.Fatalf("the keyed form has room for %d bytes, less than the %d of a fragment", keyedRoom, fragment)
		}
		if g.UserPayloadLength == sphinx.DefaultGeometry.UserPayloadLength && !sealedHello {
			t.Fatalf("a sealed hello does not fit %v", g)
		}
	}
	// The previous release's fragments, in its 2,048-byte payloads: the
	// classical envelope with the sender's key, as now.
	before := legacyGeometry.UserPayloadLength - envelope.ClassicalOverhead - 1 - envelope.KeySize - 4*2 - legacyGeometry.SURBLength() - session.EncryptedHeaderSize - session.SealOverhead - 1
	if now := fragmentCapacity(legacyGeometry); float64(now) < 0.9*float64(before) {
		t.Fatalf("an established session carries %d bytes a packet in the previous geometry, %d before", now, before)
	}
}
