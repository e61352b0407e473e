package client

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// gatedRand is a source of randomness that, once armed, holds its next
// reader until released: packet creation reads it, so a test can hold the
// client in the middle of building a packet, with its lock taken.
type gatedRand struct {
	r       io.Reader
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedRand) Read(p []byte) (int, error) {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.r.Read(p)
}

func (g *gatedRand) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.entered, g.release = true, make(chan struct{}), make(chan struct{})
}

// TestReadsDoNotWaitForPackets holds the client in the middle of building
// a packet (a session being set up with PQXDH, under the contact's lock)
// and checks that the client's lock is free, that every read the command
// line and the web interface make still answers — status, the inbox, the
// contacts, the features' lists — and that the user can queue a message.
func TestReadsDoNotWaitForPackets(t *testing.T) {
	gate := &gatedRand{r: testrand.New(40, 2)}
	pair := newOfflinePair(t, offline{seed: 40, aliceRand: gate})
	alice, clk := pair.alice, pair.clock
	if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte("open to talks?")}); err != nil {
		t.Fatal(err)
	}

	gate.arm()
	fired := make(chan error, 1)
	go func() { fired <- alice.fire(evSend, &recordingLink{clock: clk}) }()
	select {
	case <-gate.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the send slot built no packet")
	}
	// The packet is being built (its session started and sealed under the
	// contact's lock): the client's lock is free meanwhile.
	if !alice.mu.TryLock() {
		t.Fatal("the client's lock is held while a packet is built")
	}
	alice.mu.Unlock()
	if alice.byName("bob").mu.TryLock() {
		t.Fatal("bob's lock is free while a packet to him is built: the test holds nothing")
	}
	reads := map[string]func() error{
		// A write that needs no session: the user queues another message.
		"send": func() error {
			_, err := alice.Send("bob", Content{Kind: Text, Body: []byte("still there?")})
			return err
		},
		"status":   func() error { alice.Stats(); alice.Outbox(); _, _ = alice.NetworkInfo(); return nil },
		"inbox":    func() error { _, err := alice.Inbox(); return err },
		"contacts": func() error { alice.Contacts(); alice.Self(); alice.Account(); return nil },
		"changed":  func() error { alice.Changed(); return nil },
		// What the features' lists read (features_test.go holds the lock
		// and reads those lists).
		"names": func() error { alice.ContactName("00"); _, _ = alice.ContactCard("00"); return nil },
		"vault": func() error { _, err := NewTable[inRecord]("in/").All(alice.Store()); return err },
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
			t.Fatalf("%s waited for the packet being built", name)
		}
	}
	if out := alice.Outbox(); len(out) != 2 || out[0].Text != "open to talks?" || out[1].Text != "still there?" {
		t.Fatalf("outbox while the packet is built: %+v", out)
	}
	close(gate.release)
	if err := <-fired; err != nil {
		t.Fatal(err)
	}
	if s := alice.Stats(); s.SendSlots != 1 {
		t.Fatalf("after the slot the counters say %d send slots", s.SendSlots)
	}
}
