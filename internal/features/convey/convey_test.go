package convey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"
	"time"
)

var (
	when   = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	salt   = [SaltSize]byte{7, 7, 7}
	signer = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
)

func TestSignedReceipt(t *testing.T) {
	r := NewReceipt(SignedReceipt, Commit(salt, "yes"), "a party in country X", when, signer)
	if err := r.Verify("yes", salt, signer.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	for name, err := range map[string]error{
		"another message":      r.Verify("no", salt, signer.Public().(ed25519.PublicKey)),
		"another salt":         r.Verify("yes", [SaltSize]byte{}, signer.Public().(ed25519.PublicKey)),
		"another intermediary": r.Verify("yes", salt, other.Public().(ed25519.PublicKey)),
	} {
		if !errors.Is(err, ErrReceipt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A changed label or time breaks the signature.
	forged := *r
	forged.To = "someone else"
	if err := forged.Verify("yes", salt, signer.Public().(ed25519.PublicKey)); !errors.Is(err, ErrReceipt) {
		t.Fatalf("relabelled receipt: %v", err)
	}
}

// A deniable receipt convinces its holder (it came inside the session) but
// not a third party: it carries no signature, and its holder could have
// made the very same bytes without the intermediary — shown here by making
// it with a key that is not the intermediary's and getting an identical
// receipt but for the key field, which the holder can set to anything.
func TestDeniableReceipt(t *testing.T) {
	r := NewReceipt(DeniableReceipt, Commit(salt, "yes"), "a party in country X", when, signer)
	if !r.Matches("yes", salt) || r.Matches("no", salt) {
		t.Fatal("a deniable receipt does not name its message")
	}
	if err := r.Verify("yes", salt, signer.Public().(ed25519.PublicKey)); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("a third party checking a deniable receipt: %v", err)
	}
	holder := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	forged := NewReceipt(DeniableReceipt, Commit(salt, "yes"), "a party in country X", when, holder)
	forged.Intermediary = signer.Public().(ed25519.PublicKey)
	a, _ := Marshal(&Outcome{Conveyed: true, Receipt: r})
	b, _ := Marshal(&Outcome{Conveyed: true, Receipt: forged})
	if !bytes.Equal(a, b) {
		t.Fatal("the holder cannot make the same deniable receipt alone")
	}
}

// The commitment hides a short message: without the salt, hashing the
// guesses "yes" and "no" does not find it.
func TestCommitmentIsSalted(t *testing.T) {
	c := Commit(salt, "yes")
	for _, guess := range []string{"yes", "no", "Yes"} {
		if Commit([SaltSize]byte{}, guess) == c {
			t.Fatalf("the commitment to %q is found without the salt", guess)
		}
	}
}

func messages() []Message {
	return []Message{
		&Request{ID: [IDSize]byte{1}, To: "the party in country X", Text: "we accept the venue", Receipt: SignedReceipt, Salt: salt},
		&Request{ID: [IDSize]byte{2}, Text: "answer", InReplyTo: [IDSize]byte{9}},
		&Conveyed{ID: [IDSize]byte{3}, From: "a party in country Y", Note: "passed on unchanged", Text: "we accept the venue"},
		&Outcome{ID: [IDSize]byte{4}, Conveyed: true, Receipt: NewReceipt(SignedReceipt, Commit(salt, "x"), "X", when, signer)},
		&Outcome{ID: [IDSize]byte{5}, Conveyed: true, Receipt: NewReceipt(DeniableReceipt, Commit(salt, "x"), "X", when, signer)},
		&Outcome{ID: [IDSize]byte{6}, Note: "I will not pass this on"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range messages() {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%+v came back as %+v", m, got)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := Marshal(messages()[0])
	for name, b := range map[string][]byte{
		"empty":    {},
		"version":  append([]byte{2}, good[1:]...),
		"type":     append([]byte{1, 9}, good[2:]...),
		"trailing": append(bytes.Clone(good), 0),
		"short":    good[:len(good)-3],
	} {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range messages() {
		b, _ := Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Marshal(m)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed message does not encode back: %v", err)
		}
	})
}
