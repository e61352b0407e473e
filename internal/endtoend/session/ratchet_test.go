package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// pair sets up a session: PQXDH, then both ratchets. Alice must send first.
func pair(t testing.TB, seed byte) (alice, bob *Ratchet, ad []byte) {
	t.Helper()
	a, b := newIdentity(t, seed), newIdentity(t, seed+1)
	card := b.Card()
	skA, adA, init, err := Initiate(testrand.New(seed, 1), a, card)
	if err != nil {
		t.Fatal(err)
	}
	var guard Guard
	skB, _, err := Respond(b, &init, &guard)
	if err != nil {
		t.Fatal(err)
	}
	if alice, err = NewInitiatorRatchet(testrand.New(seed, 2), skA, card.Prekey.Key[:]); err != nil {
		t.Fatal(err)
	}
	if bob, err = NewResponderRatchet(testrand.New(seed, 3), skB, b.Prekey.Key); err != nil {
		t.Fatal(err)
	}
	return alice, bob, adA
}

type message struct{ header, body []byte }

func send(t testing.TB, r *Ratchet, ad []byte, text string) message {
	t.Helper()
	h, c, err := r.Encrypt([]byte(text), ad)
	if err != nil {
		t.Fatal(err)
	}
	return message{h, c}
}

func recv(t testing.TB, r *Ratchet, ad []byte, m message, want string) {
	t.Helper()
	got, err := r.Decrypt(m.header, m.body, ad)
	if err != nil || string(got) != want {
		t.Fatalf("decrypt: %q, %v; want %q", got, err, want)
	}
}

func TestConversation(t *testing.T) {
	alice, bob, ad := pair(t, 10)
	if _, _, err := bob.Encrypt([]byte("too early"), ad); err == nil {
		t.Fatal("the responder sent before hearing from the initiator")
	}
	for round := range 5 {
		for i := range 3 {
			text := fmt.Sprintf("alice %d.%d", round, i)
			recv(t, bob, ad, send(t, alice, ad, text), text)
		}
		for i := range 2 {
			text := fmt.Sprintf("bob %d.%d", round, i)
			recv(t, alice, ad, send(t, bob, ad, text), text)
		}
	}
	// The wrong associated data fails, and leaves the state usable.
	m := send(t, alice, ad, "hello")
	if _, err := bob.Decrypt(m.header, m.body, []byte("other")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong AD: %v", err)
	}
	recv(t, bob, ad, m, "hello")
	// A message is read once: its key is gone after.
	if _, err := bob.Decrypt(m.header, m.body, ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("second reading: %v", err)
	}
}

// TestOutOfOrderAndLost delivers messages across several ratchet steps out of
// order, with some never delivered.
func TestOutOfOrderAndLost(t *testing.T) {
	alice, bob, ad := pair(t, 20)
	recv(t, bob, ad, send(t, alice, ad, "a0"), "a0")
	var first []message
	for i := range 5 {
		first = append(first, send(t, bob, ad, fmt.Sprintf("b%d", i)))
	}
	recv(t, alice, ad, first[3], "b3")
	reply := send(t, alice, ad, "a1")
	recv(t, bob, ad, reply, "a1")
	second := []message{send(t, bob, ad, "c0"), send(t, bob, ad, "c1")}
	recv(t, alice, ad, second[1], "c1")
	recv(t, alice, ad, first[0], "b0")
	recv(t, alice, ad, second[0], "c0")
	recv(t, alice, ad, first[4], "b4")
	// first[1] and first[2] are lost; their keys wait, bounded.
	if len(alice.skipped) != 2 {
		t.Fatalf("%d skipped keys stored, want 2", len(alice.skipped))
	}
}

// TestSkippedKeyBound checks that a message cannot make the receiver derive
// and store more than MaxSkip keys, that a refused message leaves the state
// as it was, and that stored keys stay under MaxStoredSkipped.
func TestSkippedKeyBound(t *testing.T) {
	alice, bob, ad := pair(t, 30)
	var far message
	for i := range MaxSkip + 2 {
		far = send(t, alice, ad, fmt.Sprintf("m%d", i))
	}
	if _, err := bob.Decrypt(far.header, far.body, ad); !errors.Is(err, ErrTooManySkipped) {
		t.Fatalf("message %d ahead: %v", MaxSkip+1, err)
	}
	if len(bob.skipped) != 0 || bob.nr != 0 {
		t.Fatal("a refused message changed the state")
	}
	// Three chains of MaxSkip skipped keys each: the store stays bounded.
	alice, bob, ad = pair(t, 31)
	for chain := range 3 {
		var last message
		for i := range MaxSkip + 1 {
			last = send(t, alice, ad, fmt.Sprintf("%d.%d", chain, i))
		}
		recv(t, bob, ad, last, fmt.Sprintf("%d.%d", chain, MaxSkip))
		recv(t, alice, ad, send(t, bob, ad, "ack"), "ack")
		if len(bob.skipped) > MaxStoredSkipped {
			t.Fatalf("%d skipped keys stored", len(bob.skipped))
		}
	}
	if len(bob.skipped) != MaxStoredSkipped {
		t.Fatalf("%d skipped keys stored, want the bound %d", len(bob.skipped), MaxStoredSkipped)
	}
}

// TestForwardSecrecy: a state captured after a ratchet step cannot decrypt
// the ciphertexts that came before.
func TestForwardSecrecy(t *testing.T) {
	alice, bob, ad := pair(t, 40)
	var old []message
	for i := range 3 {
		m := send(t, alice, ad, fmt.Sprintf("old %d", i))
		old = append(old, m)
		recv(t, bob, ad, m, fmt.Sprintf("old %d", i))
	}
	recv(t, alice, ad, send(t, bob, ad, "step"), "step")
	recv(t, bob, ad, send(t, alice, ad, "step back"), "step back")
	captured := bob.clone()
	for i, m := range old {
		if _, err := captured.Decrypt(m.header, m.body, ad); err == nil {
			t.Fatalf("the captured state decrypted old message %d", i)
		}
	}
}

// TestPostCompromiseRecovery: an attacker with a copy of Alice's state (but
// not her future randomness) reads the current chain, but after one round
// trip no longer reads what Bob sends.
func TestPostCompromiseRecovery(t *testing.T) {
	alice, bob, ad := pair(t, 50)
	recv(t, bob, ad, send(t, alice, ad, "hello"), "hello")
	stolen := alice.clone()
	stolen.rand = testrand.New(99) // the attacker cannot predict Alice's next keys

	m1 := send(t, bob, ad, "m1")
	recv(t, alice, ad, m1, "m1")
	recv(t, stolen, ad, m1, "m1") // the compromise still shows
	recv(t, bob, ad, send(t, alice, ad, "m2"), "m2")
	m3 := send(t, bob, ad, "m3")
	recv(t, alice, ad, m3, "m3")
	if _, err := stolen.Decrypt(m3.header, m3.body, ad); err == nil {
		t.Fatal("the stolen state still decrypts after a round trip")
	}
}

// TestDeniability: Bob alone, from his own state, can make a message "from
// Alice" that his ratchet accepts exactly like her real ones, so a
// transcript proves nothing to a third party. Nothing in a message is
// signed.
func TestDeniability(t *testing.T) {
	alice, bob, ad := pair(t, 60)
	recv(t, bob, ad, send(t, alice, ad, "real"), "real")

	// Bob forges Alice's next message with his receiving chain.
	judge := bob.clone() // what a third party would run, given Bob's state
	forger := bob.clone()
	ck, mk := kdfCK(append([]byte(nil), forger.ckr...))
	clear(ck)
	header := append(append([]byte(nil), forger.dhr...), make([]byte, 8)...)
	binary.BigEndian.PutUint32(header[32:], forger.pn)
	binary.BigEndian.PutUint32(header[36:], forger.nr)
	encHeader, err := hencrypt(testrand.New(61), forger.hkr, header)
	if err != nil {
		t.Fatal(err)
	}
	body, err := encrypt(mk, []byte("forged"), append(append([]byte(nil), ad...), encHeader...))
	if err != nil {
		t.Fatal(err)
	}
	recv(t, judge, ad, message{encHeader, body}, "forged")

	// And a real message from Alice in the same place decrypts the same
	// way on Bob's state.
	recv(t, bob, ad, send(t, alice, ad, "genuine"), "genuine")
}

// TestRandomActions plays two parties through long random sequences of
// sends, deliveries, drops, duplicates, reorderings and saving and restoring
// state: every message delivered is read once and intact, and no replay is
// accepted.
func TestRandomActions(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), 7}))
		alice, bob, ad := pair(t, byte(70+seed))
		parties := [2]*Ratchet{alice, bob}
		type sent struct {
			m    message
			text string
		}
		var inFlight [2][]sent // messages on their way to party i
		read := map[string]bool{}
		// Alice speaks first, so Bob can send at all.
		first := send(t, alice, ad, "0:first")
		recv(t, bob, ad, first, "0:first")
		read["0:first"] = true
		for step := range 400 {
			from := rng.IntN(2)
			to := 1 - from
			switch action := rng.IntN(10); {
			case action < 4: // send
				text := fmt.Sprintf("%d:%d", from, step)
				inFlight[to] = append(inFlight[to], sent{send(t, parties[from], ad, text), text})
			case action < 7 && len(inFlight[to]) > 0: // deliver a random one
				i := rng.IntN(len(inFlight[to]))
				s := inFlight[to][i]
				got, err := parties[to].Decrypt(s.m.header, s.m.body, ad)
				if read[s.text] {
					if err == nil {
						t.Fatalf("seed %d step %d: %q accepted twice", seed, step, s.text)
					}
				} else if errors.Is(err, ErrTooManySkipped) {
					// Allowed: a message too far ahead is refused.
				} else if err != nil || string(got) != s.text {
					t.Fatalf("seed %d step %d: %q gave %q, %v", seed, step, s.text, got, err)
				} else {
					read[s.text] = true
				}
				if rng.IntN(3) > 0 { // keep it as a duplicate sometimes
					inFlight[to] = append(inFlight[to][:i], inFlight[to][i+1:]...)
				}
			case action < 8 && len(inFlight[to]) > 0: // drop one
				i := rng.IntN(len(inFlight[to]))
				inFlight[to] = append(inFlight[to][:i], inFlight[to][i+1:]...)
			case action == 9: // save and restore a party's state
				saved, err := parties[from].MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				restored, err := UnmarshalRatchet(saved, testrand.New(byte(seed), byte(step)))
				if err != nil {
					t.Fatalf("seed %d step %d: restoring: %v", seed, step, err)
				}
				parties[from] = restored
			}
		}
		if len(read) < 50 {
			t.Fatalf("seed %d: only %d messages read", seed, len(read))
		}
	}
}

func BenchmarkEncrypt2KiB(b *testing.B) {
	alice, _, ad := pair(b, 90)
	msg := bytes.Repeat([]byte{'x'}, 2048)
	for b.Loop() {
		if _, _, err := alice.Encrypt(msg, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt2KiB(b *testing.B) {
	alice, bob, ad := pair(b, 91)
	msg := bytes.Repeat([]byte{'x'}, 2048)
	msgs := make([]message, b.N)
	for i := range msgs {
		h, c, err := alice.Encrypt(msg, ad)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = message{h, c}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := bob.Decrypt(msgs[i].header, msgs[i].body, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStateRoundTrip checks that a saved state re-encodes to the same bytes
// and goes on exactly like the original.
func TestStateRoundTrip(t *testing.T) {
	alice, bob, ad := pair(t, 100)
	recv(t, bob, ad, send(t, alice, ad, "a"), "a")
	lost := send(t, bob, ad, "lost for now")
	recv(t, alice, ad, send(t, bob, ad, "b"), "b")
	saved, err := alice.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := UnmarshalRatchet(saved, testrand.New(101))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := restored.MarshalBinary()
	if !bytes.Equal(again, saved) {
		t.Fatal("the restored state encodes differently")
	}
	recv(t, restored, ad, lost, "lost for now") // a skipped key survived
	recv(t, bob, ad, send(t, restored, ad, "c"), "c")
	for _, bad := range [][]byte{nil, saved[:20], append(bytes.Clone(saved), 0), append([]byte("bcratchet\x02"), saved[10:]...)} {
		if _, err := UnmarshalRatchet(bad, testrand.New(1)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

// TestSkippedKeysExpire checks that skipped keys older than the limit are
// erased, and their messages then count as lost.
func TestSkippedKeysExpire(t *testing.T) {
	alice, bob, ad := pair(t, 110)
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	bob.SetClock(fake)
	late := send(t, alice, ad, "late")
	recv(t, bob, ad, send(t, alice, ad, "on time"), "on time")
	fake.Advance(2 * time.Hour)
	if n := bob.ExpireSkipped(time.Hour); n != 1 {
		t.Fatalf("expired %d keys, want 1", n)
	}
	if _, err := bob.Decrypt(late.header, late.body, ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a message whose key expired: %v", err)
	}
}

// FuzzRatchetState checks that the state decoder fails only with
// ErrMalformed and re-encodes what it accepts to the same bytes.
func FuzzRatchetState(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzRatchetState")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRatchet(b, testrand.New(1))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
