package client

import (
	"errors"
	"testing"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestStateLeftByACrashOpens builds on disk, for each step where writing a
// message's state can be cut by a crash, what that crash leaves, and
// checks that the client opens on it, shows every message the user was
// told of in the right state and keeps no content it no longer needs.
// (The crash between saving a delivered message's record and deleting its
// content is what an end-to-end test met: earlier releases deleted first,
// and the client would then not open.)
func TestStateLeftByACrashOpens(t *testing.T) {
	pair := newOfflinePair(t, offline{seed: 41, aliceRand: testrand.New(41, 2)})
	alice := pair.alice
	send := func(text string) [16]byte {
		t.Helper()
		id, err := alice.Send("bob", Content{Kind: Text, Body: []byte(text)})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseID(id, "a message")
		if err != nil {
			t.Fatal(err)
		}
		return parsed
	}
	interrupted, settled, waiting, neverQueued := send("last ack interrupted"), send("settled, content left"), send("on its way"), send("never queued")

	st := alice.store
	// An earlier release deleted the content of a message on its last
	// acknowledgement before it saved the record: the record says "sent".
	if err := bodies.delete(st, interrupted); err != nil {
		t.Fatal(err)
	}
	// This release saves the settled record first; the crash comes
	// before the content is deleted.
	var rec outRecord
	if err := outRecords.get(st, settled, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Status = Delivered
	for i := range rec.Acked {
		rec.Acked[i] = true
	}
	if err := outRecords.put(st, settled, rec); err != nil {
		t.Fatal(err)
	}
	// A crash while a message was queued, before its record was saved:
	// its content and text are on disk, and Send had not returned.
	if err := outRecords.delete(st, neverQueued); err != nil {
		t.Fatal(err)
	}
	alice.Close()

	cfg := pair.aliceCfg
	cfg.Rand = testrand.New(41, 4)
	reopened, err := Open(cfg)
	if err != nil {
		t.Fatalf("the client does not open on what a crash left: %v", err)
	}
	defer reopened.Close()
	status := map[[16]byte]Status{}
	for _, m := range reopened.Outbox() {
		id, err := ParseID(m.ID, "a message")
		if err != nil {
			t.Fatal(err)
		}
		status[id] = m.Status
	}
	want := map[[16]byte]Status{interrupted: Delivered, settled: Delivered, waiting: Queued}
	if len(status) != len(want) {
		t.Fatalf("outbox after the crash: %v, want %v", status, want)
	}
	for id, s := range want {
		if status[id] != s {
			t.Errorf("message %x is %q after the crash, want %q", id, status[id], s)
		}
	}
	st = reopened.store
	for name, id := range map[string][16]byte{"the interrupted": interrupted, "the settled": settled, "the never queued": neverQueued} {
		if _, err := bodies.get(st, id); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("%s message's content is still on disk (%v)", name, err)
		}
	}
	if _, err := sentTexts.get(st, neverQueued); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("the never queued message's text is still on disk (%v)", err)
	}
	if _, err := bodies.get(st, waiting); err != nil {
		t.Errorf("the content of the message on its way is gone: %v", err)
	}
}
