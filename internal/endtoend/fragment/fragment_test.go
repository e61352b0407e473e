package fragment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newReassembler() *Reassembler {
	return &Reassembler{MaxPending: 8, MaxAge: time.Hour, RememberDone: 100}
}

// TestShuffledAndRepeated delivers the fragments of many messages of every
// size around the boundaries, shuffled and repeated: each message comes out
// once, intact.
func TestShuffledAndRepeated(t *testing.T) {
	const capacity = 64
	room := capacity - HeaderSize
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for _, size := range []int{0, 1, room - 1, room, room + 1, 3*room - 1, 3 * room, 1000} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		var id ID
		id[0] = byte(size)
		id[1] = byte(size >> 8)
		frags, err := Split(id, msg, capacity)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frags {
			if len(f) > capacity {
				t.Fatalf("fragment of %d bytes, capacity %d", len(f), capacity)
			}
		}
		all := append(append([][]byte{}, frags...), frags...) // every fragment twice
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		r := newReassembler()
		delivered := 0
		for _, f := range all {
			gotID, got, complete, err := r.Add(f, t0)
			if err != nil {
				t.Fatal(err)
			}
			if complete {
				delivered++
				if gotID != id || !bytes.Equal(got, msg) {
					t.Fatalf("%d-byte message came out wrong", size)
				}
			}
		}
		if delivered != 1 || r.Pending() != 0 {
			t.Fatalf("%d-byte message delivered %d times, %d pending", size, delivered, r.Pending())
		}
	}
}

// TestBounds checks the pending bound, expiry and the size limits.
func TestBounds(t *testing.T) {
	r := newReassembler()
	for i := range 20 {
		frags, _ := Split(ID{byte(i)}, make([]byte, 100), 64)
		if _, _, _, err := r.Add(frags[0], t0); err != nil {
			t.Fatal(err)
		}
	}
	if r.Pending() != 8 {
		t.Fatalf("%d pending, bound 8", r.Pending())
	}
	frags, _ := Split(ID{99}, make([]byte, 100), 64)
	r.Add(frags[0], t0.Add(2*time.Hour))
	if r.Pending() != 1 {
		t.Fatalf("%d pending after expiry, want 1", r.Pending())
	}
	var zero Reassembler // defaults
	parts, _ := Split(ID{7}, make([]byte, 300), 64)
	for i, p := range parts {
		if _, _, complete, err := zero.Add(p, t0); err != nil || complete != (i == len(parts)-1) {
			t.Fatalf("zero-value reassembler, fragment %d: %v %v", i, complete, err)
		}
	}
	if _, err := Split(ID{}, nil, HeaderSize); err == nil {
		t.Fatal("split with no room for a body")
	}
	if _, err := Split(ID{}, make([]byte, 70000), HeaderSize+1); err == nil {
		t.Fatal("split into more than 65535 fragments")
	}
	for _, bad := range [][]byte{nil, {2}, append([]byte{1}, make([]byte, 24)...)} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

// FuzzParse checks that Parse fails only with ErrMalformed and that a
// reassembler never panics or returns a message longer than announced.
func FuzzParse(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParse")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r := newReassembler()
		for _, frag := range [][]byte{a, b} {
			p, err := Parse(frag)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatal(err)
				}
				continue
			}
			_, msg, complete, err := r.Add(frag, t0)
			if err == nil && complete && len(msg) != p.Length {
				t.Fatalf("message of %d bytes, announced %d", len(msg), p.Length)
			}
		}
	})
}
