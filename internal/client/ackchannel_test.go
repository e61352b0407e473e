package client

import (
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestAckChannel follows ackchannel.go with alice and two contacts whose
// software reads ack batches: a channel opens to a contact once at start
// (the probe) and for ackChannelSilence after the contact was heard from,
// takes about one send slot in ackSlotShare, is shared round robin, closes
// in silence, and carries every ack ID owed — as many as fit a packet, the
// rest in the next.
func TestAckChannel(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 75, mixesPerLayer: 2, aliceRand: testrand.New(75, 'a')})
	alice, clk := p.alice, p.clock
	bob, carol := p.confirmSession(t), withCarol(t, p)
	alice.mu.Lock()
	bob.rec.Reads, carol.rec.Reads = readsAckBatches, readsAckBatches
	alice.unlock()
	mailboxes := map[[32]byte]string{bob.shown.Load().card.Mailbox: "bob", carol.shown.Load().card.Mailbox: "carol"}

	// slots fires n send slots a second apart; it returns the packets that
	// reached bob's and carol's mailboxes (nothing else is queued: every
	// other slot is a drop), and checks that they are the ack channel's.
	var sent [][]byte
	slots := func(n int) map[string]int {
		t.Helper()
		before := alice.Stats().AckPacketsSent
		got := map[string]int{}
		for range n {
			clk.Advance(time.Second)
			packet := planned(t, alice, func() (build, error) { return alice.plan(evSend, clk.Now()) })
			if name := mailboxes[recipientOf(t, p, packet)]; name != "" {
				got[name]++
				sent = append(sent, packet)
			}
		}
		if n := alice.Stats().AckPacketsSent - before; n != uint64(got["bob"]+got["carol"]) {
			t.Fatalf("%d ack channel packets counted, %v reached the contacts", n, got)
		}
		return got
	}
	locked := func(f func()) {
		alice.mu.Lock()
		f()
		alice.unlock()
	}

	if got := slots(100); len(got) != 0 {
		t.Fatalf("closed channels sent %v", got)
	}
	locked(alice.probeContacts)
	if got := slots(100); got["bob"] != 1 || got["carol"] != 1 {
		t.Fatalf("the probes: %v, want one each", got)
	}
	locked(func() { alice.heardFrom(bob, clk.Now()) })
	// 200 slots, 200 s: within ackChannelSilence of bob's word.
	if got := slots(200); got["carol"] != 0 || got["bob"] < 200/ackSlotShare/2 || got["bob"] > 200/ackSlotShare*2 {
		t.Fatalf("bob heard from: %v in 200 send slots, want about %d to bob alone", got, 200/ackSlotShare)
	}
	locked(func() { alice.heardFrom(bob, clk.Now()); alice.heardFrom(carol, clk.Now()) })
	if got := slots(200); got["bob"]-got["carol"] > 1 || got["carol"]-got["bob"] > 1 {
		t.Fatalf("both heard from: %v, want them in turn", got)
	}
	clk.Advance(ackChannelSilence)
	if got := slots(100); len(got) != 0 {
		t.Fatalf("after %v of silence: %v", ackChannelSilence, got)
	}

	// Acks owed: as many as fit go in the next packet, the rest in the one
	// after, though bob stays silent; then the channel closes again.
	room := envelope.AckBatchCapacity(alice.format.Geometry().UserPayloadLength)
	owed := make([][envelope.AckIDSize]byte, room+10)
	locked(func() {
		for i := range owed {
			owed[i] = [envelope.AckIDSize]byte{byte(i), byte(i >> 8), 1}
			if err := alice.owe(bob, owed[i]); err != nil {
				t.Fatal(err)
			}
		}
	})
	sent = nil
	if got := slots(100); got["bob"] != 2 || got["carol"] != 0 {
		t.Fatalf("%d acks owed to bob: %v", len(owed), got)
	}
	bob.mu.Lock()
	key := bob.sess.Envelope.Send
	bob.mu.Unlock()
	var acked [][envelope.AckIDSize]byte
	for i, packet := range sent {
		opened, err := envelope.Open(&envelope.Keys{Keyed: []*[envelope.KeySize]byte{&key}}, payloadOf(t, p, packet))
		if err != nil || opened.Keyed != 0 || opened.Kind != envelope.KindAckBatch {
			t.Fatalf("packet %d to bob: %+v, %v", i, opened, err)
		}
		if want := []int{room, 10}[i]; len(opened.AckIDs) != want {
			t.Fatalf("packet %d to bob carries %d ack IDs, want %d", i, len(opened.AckIDs), want)
		}
		acked = append(acked, opened.AckIDs...)
	}
	for i := range owed {
		if acked[i] != owed[i] {
			t.Fatalf("ack %d: %x, owed %x", i, acked[i], owed[i])
		}
	}
}

// withCarol adds carol, a contact at bob's provider, to alice's side of an
// offline pair, with a session taken as confirmed.
func withCarol(t *testing.T, p offlinePair) *contact {
	t.Helper()
	other, err := identity.Generate(testrand.New(75, 'c'), [32]byte(p.doc.Providers()[1].IdentityKey), [32]byte{7}, p.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.alice.AddContact("carol", other.Card()); err != nil {
		t.Fatal(err)
	}
	return p.confirmSessionWith(t, "carol")
}

// TestAckBatchFromItsContactOnly: an ack channel packet acknowledges only
// transmissions to the contact whose session key opened it — bob cannot
// acknowledge what alice sent carol — and an ID it names twice counts once.
func TestAckBatchFromItsContactOnly(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 76, mixesPerLayer: 2, aliceRand: testrand.New(76, 'a')})
	alice, clk := p.alice, p.clock
	bob, carol := p.confirmSession(t), withCarol(t, p)
	if _, err := alice.Send("carol", Content{Kind: Text, Body: []byte("for carol")}); err != nil {
		t.Fatal(err)
	}
	for planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) }) != nil {
	}
	alice.outbox.mu.Lock()
	var ids [][envelope.AckIDSize]byte
	for id, tr := range alice.outbox.pending {
		if tr.to == carol && tr.msg != nil {
			ids = append(ids, id)
		}
	}
	alice.outbox.mu.Unlock()
	if len(ids) != 2 { // the text, and the capabilities message before it
		t.Fatalf("%d transmissions to carol", len(ids))
	}
	locked := func(f func()) {
		alice.mu.Lock()
		f()
		alice.unlock()
	}
	locked(func() { alice.receiveAckBatch(bob, ids, clk.Now()) })
	if n := unacknowledged(alice); n != 2 || alice.Stats().AcksReceived != 0 {
		t.Fatalf("bob's ack packet acknowledged what alice sent carol: %d fragments left, stats %+v", n, alice.Stats())
	}
	locked(func() { alice.receiveAckBatch(carol, append(ids, ids[0]), clk.Now()) })
	if n := unacknowledged(alice); n != 0 || alice.Stats().AcksReceived != 2 || countStatus(alice, Delivered) != 1 {
		t.Fatalf("carol's ack packet: %d fragments left, %d acks counted, outbox %+v", n, alice.Stats().AcksReceived, alice.Outbox())
	}
}
