package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Quota: 50, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutFetchAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mailboxes.db")
	s := open(t, path)
	alice, bob := ID{1}, ID{2}
	for i := range 10 {
		if _, err := s.Put(alice, []byte(fmt.Sprintf("packet %d", i)), t0); err != nil {
			t.Fatal(err)
		}
	}
	s.Put(bob, []byte("for bob"), t0)
	got, err := s.Fetch(alice, 4)
	if err != nil || len(got) != 4 || string(got[0].Packet) != "packet 0" || string(got[3].Packet) != "packet 3" {
		t.Fatalf("Fetch = %v, %v", got, err)
	}
	// Fetching again without an ack returns the same packets.
	again, _ := s.Fetch(alice, 4)
	if again[0].Seq != got[0].Seq {
		t.Fatal("an unacknowledged fetch lost packets")
	}
	if err := s.Ack(alice, got[3].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(alice); n != 6 {
		t.Fatalf("%d packets after the ack, want 6", n)
	}
	// Durable across a close and reopen.
	s.Close()
	s = open(t, path)
	defer s.Close()
	rest, _ := s.Fetch(alice, 100)
	if len(rest) != 6 || string(rest[0].Packet) != "packet 4" {
		t.Fatalf("after reopening: %d packets, first %q", len(rest), rest[0].Packet)
	}
	if b, _ := s.Fetch(bob, 10); len(b) != 1 || !bytes.Equal(b[0].Packet, []byte("for bob")) {
		t.Fatal("bob's mailbox is wrong")
	}
	if none, err := s.Fetch(ID{9}, 10); err != nil || len(none) != 0 {
		t.Fatalf("unknown mailbox: %v %v", none, err)
	}
}

func TestQuotaAndExpiry(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	defer s.Close()
	id := ID{3}
	for i := range 50 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.Put(id, []byte{byte(i)}, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(id, []byte("one too many"), t0); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	// Retention one hour: at t0+70m, packets received before t0+10m go.
	removed, err := s.Expire(t0.Add(70 * time.Minute))
	if err != nil || removed != 10 {
		t.Fatalf("Expire removed %d, %v; want 10", removed, err)
	}
	if n, _ := s.Count(id); n != 40 {
		t.Fatalf("%d left, want 40", n)
	}
	if _, err := s.Put(id, []byte("fits again"), t0); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestPutMany: one transaction stores a batch for several mailboxes; a
// packet over its mailbox's quota is refused alone, in order.
func TestPutMany(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "m.db"))
	defer s.Close()
	full, other := ID{4}, ID{5}
	for i := range 48 {
		if _, err := s.Put(full, []byte{byte(i)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	batch := []Delivery{{full, []byte("49")}, {other, []byte("a")}, {full, []byte("50")}, {full, []byte("51: over")}, {other, []byte("b")}}
	errs, err := s.PutMany(batch, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, nil, nil, ErrQuota, nil} {
		if !errors.Is(errs[i], want) || (want == nil && errs[i] != nil) {
			t.Fatalf("packet %d: %v, want %v", i, errs[i], want)
		}
	}
	got, _ := s.Fetch(other, 10)
	if len(got) != 2 || string(got[0].Packet) != "a" || string(got[1].Packet) != "b" {
		t.Fatalf("other mailbox: %v", got)
	}
	if n, _ := s.Count(full); n != 50 {
		t.Fatalf("full mailbox holds %d", n)
	}
}

// TestOwnRetention: a mailbox's owner may ask for a shorter retention (for
// disappearing messages), never a longer one; other mailboxes keep the
// store's.
func TestOwnRetention(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	short, long, other := ID{4}, ID{5}, ID{6}
	for _, id := range []ID{short, long, other} {
		for i := range 30 {
			if _, err := s.Put(id, []byte{byte(i)}, t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.SetRetention(short, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(long, 10*time.Hour); err != nil {
		t.Fatal(err)
	}
	// At t0+35m: the short mailbox keeps what came after t0+25m (5
	// packets); the others keep all 30 (the store's retention is an hour).
	if _, err := s.Expire(t0.Add(35 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[ID]int{short: 5, long: 30, other: 30} {
		if n, _ := s.Count(id); n != want {
			t.Errorf("mailbox %x holds %d, want %d", id[0], n, want)
		}
	}
	if err := s.SetRetention(short, 0); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c.db"), Options{Quota: 10000, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := s.Put(ID{byte(w % 2)}, []byte{byte(w), byte(i)}, t0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	a, _ := s.Count(ID{0})
	b, _ := s.Count(ID{1})
	if a != 100 || b != 100 {
		t.Fatalf("counts %d and %d, want 100 each", a, b)
	}
}

func BenchmarkPut(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "b.db"), Options{Quota: 1 << 30, Retention: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	packet := make([]byte, 2556)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Put(ID{1}, packet, t0); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkPutMany stores batches of 64 packets, as a provider's committer
// does under load: one transaction and one fsync per batch. The time is per
// packet.
func BenchmarkPutMany(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "b.db"), Options{Quota: 1 << 30, Retention: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]Delivery, 64)
	for i := range batch {
		batch[i] = Delivery{Mailbox: ID{byte(i % 8)}, Packet: make([]byte, 2556)}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		if _, err := s.PutMany(batch, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchAndAck is a client's poll of a mailbox that holds packets:
// fetch four, then acknowledge them (a write transaction).
func BenchmarkFetchAndAck(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "b.db"), Options{Quota: 1 << 30, Retention: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]Delivery, 4*b.N)
	for i := range batch {
		batch[i] = Delivery{Mailbox: ID{1}, Packet: make([]byte, 2556)}
	}
	for i := 0; i < len(batch); i += 1024 {
		if _, err := s.PutMany(batch[i:min(i+1024, len(batch))], t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		got, err := s.Fetch(ID{1}, 4)
		if err != nil || len(got) != 4 {
			b.Fatalf("fetched %d: %v", len(got), err)
		}
		if err := s.Ack(ID{1}, got[3].Seq); err != nil {
			b.Fatal(err)
		}
	}
}
