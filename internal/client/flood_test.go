package client_test

import (
	"context"
	"crypto/rand"
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/tools/clienttest"
)

// TestBuriedMailboxStillDelivers: mallory holds alice's card and an
// account at a provider. Alice's mailbox already holds 1,000 junk packets
// when she comes online, and mallory goes on sending her valid packets at
// his account's limit for the whole test. A message bob sends her then
// still arrives within 60 s, and bob's client sees it delivered: nothing
// a contact sends is lost (what the mailbox's rate drops, bob sends again).
//
// The network has the default rates and poll interval (only the mixes'
// delays are short): a run faster than life would ask the provider for
// more fetches a second — each an fsync — than a loaded test machine
// gives. Without the client's draining of a backlog, alice fetches 4
// packets a second against mallory's 6 and the backlog never empties
// (RELIABILITY.md). The test waits more than it computes: it runs in
// parallel.
func TestBuriedMailboxStillDelivers(t *testing.T) {
	t.Parallel()
	params := clienttest.FastParameters()
	params.MeanDelay, params.PollInterval = time.Millisecond, time.Second
	params.SendRate, params.LoopRate, params.DropRate = 2, 0.5, 0.5
	n := clienttest.StartNetwork(t, params)
	alice := n.NewClient(t, "alice", "provider-b", client.Config{})
	bob := n.NewClient(t, "bob", "provider-a", client.Config{})
	clienttest.Introduce(t, alice, "alice", bob, "bob")
	box := mailbox.ID(alice.Account().Mailbox)

	const junk = 1000
	n.Stop("provider-b")
	buryMailbox(t, filepath.Join(n.DataDir("provider-b"), "mailboxes.db"), box, junk, params.Geometry.UserPayloadLength)
	n.Restart(t, "provider-b")

	key, _ := n.AddAccount(t, "provider-a")
	rate := 2 * (params.SendRate + params.LoopRate + params.DropRate) // the account's limit (node.userLimits)
	flood(t, n, key, box, rate)

	clienttest.Run(t, alice)
	clienttest.Run(t, bob)
	sent := time.Now()
	id, err := bob.Send("alice", client.Content{Kind: client.Text, Body: []byte("are you there?")})
	if err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, alice, 60*time.Second, "bob's message under the flood", func() bool {
		inbox, _ := alice.Inbox()
		return len(inbox) == 1
	})
	took := time.Since(sent)
	clienttest.WaitUntil(t, bob, 60*time.Second, "bob's message to be acknowledged", func() bool {
		return clienttest.CountStatus(bob, client.Delivered) == 1
	})
	out := bob.Outbox()
	if len(out) != 1 || out[0].ID != id {
		t.Fatalf("bob's outbox: %+v", out)
	}
	st := alice.Stats()
	if st.Undecryptable < junk/2 {
		t.Fatalf("alice read only %d undecryptable packets: the junk was not in her way", st.Undecryptable)
	}
	t.Logf("delivered in %v under the flood; alice fetched %d packets (%d undecryptable, %d from strangers); bob retransmitted %d fragments",
		took.Round(time.Millisecond), st.Fetched, st.Undecryptable, st.FromStrangers, bob.Stats().Retransmissions)
}

// buryMailbox stores count junk packets in a stopped provider's mailbox:
// what a flood left while the user was offline.
func buryMailbox(t *testing.T, path string, box mailbox.ID, count, payloadLength int) {
	t.Helper()
	store, err := mailbox.Open(path, mailbox.Options{Quota: 10_000, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var deliveries []mailbox.Delivery
	for range count {
		payload := make([]byte, payloadLength)
		rand.Read(payload)
		record, err := (&wire.Delivery{Payload: payload}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		deliveries = append(deliveries, mailbox.Delivery{Mailbox: box, Packet: record})
	}
	errs, err := store.PutMany(deliveries, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// flood sends valid packets to the mailbox box at provider-b, from an
// account of its own at provider-a, at rate packets a second, until the
// test ends.
func flood(t *testing.T, n *clienttest.Network, key wire.Keypair, box mailbox.ID, rate float64) {
	t.Helper()
	doc := n.TN.Document
	format, err := sphinx.New(doc.Parameters.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	var from, to *directory.Node
	for _, p := range doc.Providers() {
		switch p.Name {
		case "provider-a":
			from = p
		case "provider-b":
			to = p
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	link, err := clientlink.Dial(ctx, from.Address, key, from.LinkKey, wire.FrameSizeFor(format.Geometry().PacketLength()), false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); link.Close(); <-done })
	rng := mrand.New(mrand.NewPCG(1, 2))
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			hop := func(nd *directory.Node, cmds ...sphinx.Command) sphinx.PathHop {
				return sphinx.PathHop{ID: nd.ID(), PublicKey: nd.SphinxKey, Commands: cmds}
			}
			delay := sphinx.NodeDelay{Milliseconds: uint32(math.Round(rng.ExpFloat64()))}
			path := []sphinx.PathHop{hop(from, delay)}
			for layer := uint8(1); layer <= doc.Parameters.Layers; layer++ {
				mixes := doc.Layer(layer)
				path = append(path, hop(mixes[rng.IntN(len(mixes))], delay))
			}
			path = append(path, hop(to, sphinx.Recipient{ID: box}))
			payload := make([]byte, doc.Parameters.Geometry.UserPayloadLength)
			rand.Read(payload)
			packet, err := format.NewPacket(rand.Reader, path, payload)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := link.Send(packet); err != nil {
				return // the link closed at the test's end
			}
		}
	}()
}
