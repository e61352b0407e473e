package session

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newIdentity(t testing.TB, seed byte) *identity.Identity {
	t.Helper()
	id, err := identity.Generate(testrand.New(seed), [32]byte{}, [32]byte{seed}, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAgreement checks that both sides derive the same SK and AD, and that
// the responder refuses the same initial message twice.
func TestAgreement(t *testing.T) {
	alice, bob := newIdentity(t, 1), newIdentity(t, 2)
	skA, adA, init, err := Initiate(testrand.New(3), alice, bob.Card())
	if err != nil {
		t.Fatal(err)
	}
	var guard Guard
	skB, adB, err := Respond(bob, &init, &guard)
	if err != nil {
		t.Fatal(err)
	}
	if skA != skB || !bytes.Equal(adA, adB) {
		t.Fatal("the two sides disagree")
	}
	if _, _, err := Respond(bob, &init, &guard); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed initial message: %v, want ErrReplay", err)
	}
}

// TestPrekeyRotation checks that an initial message made from an older card
// is accepted during the grace period after rotation and refused once the
// retired prekeys are erased.
func TestPrekeyRotation(t *testing.T) {
	alice, bob := newIdentity(t, 20), newIdentity(t, 21)
	oldCard := bob.Card()
	if bob.RotationDue(now.Add(time.Hour), 7*24*time.Hour) || !bob.RotationDue(now.Add(8*24*time.Hour), 7*24*time.Hour) {
		t.Fatal("RotationDue is wrong")
	}
	if err := bob.RotatePrekeys(testrand.New(22), now.Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	newCard := bob.Card()
	if newCard.Prekey.ID != 2 || newCard.PQPrekey.ID != 2 || newCard.Verify() != nil {
		t.Fatal("the rotated card is wrong")
	}
	var guard Guard
	for _, card := range []*identity.Card{oldCard, newCard} {
		skA, _, init, err := Initiate(testrand.New(23), alice, card)
		if err != nil {
			t.Fatal(err)
		}
		skB, _, err := Respond(bob, &init, &guard)
		if err != nil || skA != skB {
			t.Fatalf("card with prekey %d: %v", card.Prekey.ID, err)
		}
	}
	erased := bob.EraseRetired(now.Add(20*24*time.Hour), 7*24*time.Hour)
	if len(erased) != 1 || erased[0] != 1 {
		t.Fatalf("erased %v, want [1]", erased)
	}
	guard.Forget(erased[0])
	_, _, init, err := Initiate(testrand.New(24), alice, oldCard)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Respond(bob, &init, &guard); !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("erased prekey: %v, want ErrUnknownPrekey", err)
	}
}

// TestSpecFormulas recomputes SK from the specification's formulas
// (PQXDH §2.2 KDF, §3.3 DH1..DH3, SS and AD) with independent calls, and
// checks a tampered KEM ciphertext gives another key (ML-KEM's implicit
// rejection), so the first message's AEAD fails.
func TestSpecFormulas(t *testing.T) {
	alice, bob := newIdentity(t, 4), newIdentity(t, 5)
	card := bob.Card()
	_, _, init, err := Initiate(testrand.New(6), alice, card)
	if err != nil {
		t.Fatal(err)
	}
	// The initiator's ephemeral key comes from the first 32 bytes of the
	// random stream.
	seed := make([]byte, 32)
	testrand.New(6).Read(seed)
	ek, _ := ecdh.X25519().NewPrivateKey(seed)
	if !bytes.Equal(ek.PublicKey().Bytes(), init.EphemeralKey[:]) {
		t.Fatal("EK_A is not derived from the random stream")
	}
	dh := func(priv *ecdh.PrivateKey, pub []byte) []byte {
		p, err := ecdh.X25519().NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out, err := priv.ECDH(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	dh1 := dh(alice.DH, card.Prekey.Key[:])
	dh2 := dh(ek, card.DHKey[:])
	dh3 := dh(ek, card.Prekey.Key[:])
	ss, err := bob.PQPrekey.Key.Decapsulate(init.KEMCiphertext[:])
	if err != nil {
		t.Fatal(err)
	}
	f := bytes.Repeat([]byte{0xff}, 32)
	ikm := bytes.Join([][]byte{f, dh1, dh2, dh3, ss}, nil)
	want, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), "backchannel_CURVE25519_SHA-256_ML-KEM-768", 32)
	if err != nil {
		t.Fatal(err)
	}
	var guard Guard
	sk, ad, err := Respond(bob, &init, &guard)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sk[:], want) {
		t.Fatal("SK differs from KDF(DH1 ‖ DH2 ‖ DH3 ‖ SS)")
	}
	if !bytes.Equal(ad, append(alice.DH.PublicKey().Bytes(), card.DHKey[:]...)) {
		t.Fatal("AD is not IK_A ‖ IK_B")
	}

	tampered := init
	tampered.EphemeralKey = init.EphemeralKey
	tampered.KEMCiphertext[0] ^= 1
	var other Guard
	sk2, _, err := Respond(bob, &tampered, &other)
	if err != nil {
		t.Fatal(err)
	}
	if sk2 == sk {
		t.Fatal("a tampered KEM ciphertext gave the same key")
	}
}

// TestRefusesBadCards checks that the initiator refuses a card whose
// signatures fail.
func TestRefusesBadCards(t *testing.T) {
	alice, bob, mallory := newIdentity(t, 7), newIdentity(t, 8), newIdentity(t, 9)
	card := bob.Card()
	card.Prekey = mallory.Card().Prekey
	if _, _, _, err := Initiate(testrand.New(1), alice, card); !errors.Is(err, identity.ErrCard) {
		t.Fatalf("forged prekey: %v, want ErrCard", err)
	}
}

func TestInitialEncoding(t *testing.T) {
	alice, bob := newIdentity(t, 10), newIdentity(t, 11)
	_, _, init, err := Initiate(testrand.New(12), alice, bob.Card())
	if err != nil {
		t.Fatal(err)
	}
	b, err := init.MarshalBinary()
	if err != nil || len(b) != InitialSize {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	var got Initial
	if err := got.UnmarshalBinary(b); err != nil || got != init {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, b[:100], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
		if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

// FuzzInitial checks that the decoder fails only with ErrMalformed and
// re-encodes what it accepts to the same bytes.
func FuzzInitial(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzInitial")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Initial
		if err := in.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		again, err := in.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// BenchmarkSetup times a whole PQXDH agreement, both sides.
func BenchmarkSetup(b *testing.B) {
	alice, bob := newIdentity(b, 13), newIdentity(b, 14)
	card := bob.Card()
	rng := testrand.New(15)
	for b.Loop() {
		_, _, init, err := Initiate(rng, alice, card)
		if err != nil {
			b.Fatal(err)
		}
		var guard Guard
		if _, _, err := Respond(bob, &init, &guard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGuardSurvivesRestart checks that a saved and restored guard still
// refuses a replayed initial message.
func TestGuardSurvivesRestart(t *testing.T) {
	alice, bob := newIdentity(t, 50), newIdentity(t, 51)
	var guard Guard
	var inits []Initial
	for i := range 3 {
		_, _, init, err := Initiate(testrand.New(52, byte(i)), alice, bob.Card())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Respond(bob, &init, &guard); err != nil {
			t.Fatal(err)
		}
		inits = append(inits, init)
	}
	saved, err := guard.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var restored Guard
	if err := restored.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	again, _ := restored.MarshalBinary()
	if !bytes.Equal(again, saved) {
		t.Fatal("the guard re-encodes differently")
	}
	for i := range inits {
		if _, _, err := Respond(bob, &inits[i], &restored); !errors.Is(err, ErrReplay) {
			t.Fatalf("initial message %d after restart: %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, saved[:9], append(bytes.Clone(saved), 0)} {
		var g Guard
		if err := g.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

// FuzzGuard checks strict, canonical decoding of a replay guard.
func FuzzGuard(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzGuard")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Guard
		if err := g.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		again, _ := g.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}
