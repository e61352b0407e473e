package session

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestSessionLifecycle runs a session from a card to a prekey rotation
// announced inside it, and checks a failed first message leaves nothing.
func TestSessionLifecycle(t *testing.T) {
	alice, bob := newIdentity(t, 40), newIdentity(t, 41)
	aliceCard, bobCard := alice.Card(), bob.Card()

	s, init, err := Start(testrand.New(42), alice, bobCard)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Seal(KindData, []byte("open to talks?"))
	if err != nil {
		t.Fatal(err)
	}
	var fresh Guard
	// A damaged first message is refused, and does not burn the initial
	// message: the genuine copy, retransmitted, is still accepted.
	broken := first
	broken.Ciphertext = bytes.Clone(first.Ciphertext)
	broken.Ciphertext[0] ^= 1
	if _, _, _, err := Accept(testrand.New(43), bob, &fresh, aliceCard, init, broken); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("damaged first message: %v", err)
	}
	b, kind, body, err := Accept(testrand.New(43), bob, &fresh, aliceCard, init, first)
	if err != nil || kind != KindData || string(body) != "open to talks?" {
		t.Fatalf("Accept: %v %q %v", kind, body, err)
	}
	if _, _, _, err := Accept(testrand.New(44), bob, &fresh, aliceCard, init, first); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed initial message: %v", err)
	}
	// Each side's envelope key to the other is the other's to receive
	// with, and the two directions differ.
	if s.Envelope.Send != b.Envelope.Receive || b.Envelope.Send != s.Envelope.Receive || s.Envelope.Send == s.Envelope.Receive ||
		s.Envelope.Send == [KeySize]byte{} {
		t.Fatal("the two sides' envelope keys do not pair up")
	}

	// Bob rotates his prekeys and tells Alice inside the session.
	if err := bob.RotatePrekeys(testrand.New(45), now.Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	newCard, _ := bob.Card().MarshalBinary()
	update, err := b.Seal(KindCardUpdate, newCard)
	if err != nil {
		t.Fatal(err)
	}
	if kind, _, err := s.Open(update); err != nil || kind != KindCardUpdate || s.Peer.Prekey.ID != 2 {
		t.Fatalf("card update: %v, prekey %d", err, s.Peer.Prekey.ID)
	}
	// A "card update" with someone else's identity is refused.
	mallory, _ := newIdentity(t, 46).Card().MarshalBinary()
	bad, _ := b.Seal(KindCardUpdate, mallory)
	if _, _, err := s.Open(bad); !errors.Is(err, identity.ErrCard) {
		t.Fatalf("foreign card update: %v", err)
	}
	if s.Peer.Prekey.ID != 2 || s.Peer.DHKey != bobCard.DHKey {
		t.Fatal("a refused update changed the peer's card")
	}
	// An initial message from an unknown sender is refused.
	carol := newIdentity(t, 47)
	_, init2, err := Start(testrand.New(48), carol, bob.Card())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Accept(testrand.New(49), bob, &fresh, aliceCard, init2, first); err == nil {
		t.Fatal("accepted an initial message from someone other than the contact")
	}
}

// FuzzDecrypt feeds arbitrary messages to an established session: only
// documented errors, and the state is unchanged by a message that fails.
func FuzzDecrypt(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzDecrypt")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	alice, bob, ad := pair(f, 130)
	recv(f, bob, ad, send(f, alice, ad, "hi"), "hi")
	before, _ := bob.MarshalBinary()
	f.Fuzz(func(t *testing.T, header, body []byte) {
		r, err := UnmarshalRatchet(before, testrand.New(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Decrypt(header, body, ad); err == nil {
			return // a real message (only if the fuzzer found one)
		} else if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrTooManySkipped) {
			t.Fatalf("undocumented error: %v", err)
		}
		after, _ := r.MarshalBinary()
		if !bytes.Equal(after, before) {
			t.Fatal("a failed message changed the state")
		}
	})
}

func TestSealedSizes(t *testing.T) {
	alice, bob := newIdentity(t, 40), newIdentity(t, 41)
	s, _, err := Start(testrand.New(42), alice, bob.Card())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("twelve bytes")
	m, err := s.Seal(KindData, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Header) != EncryptedHeaderSize || len(m.Ciphertext) != len(body)+SealOverhead {
		t.Fatalf("header %d bytes (want %d), ciphertext %d (want %d)", len(m.Header), EncryptedHeaderSize, len(m.Ciphertext), len(body)+SealOverhead)
	}
}
