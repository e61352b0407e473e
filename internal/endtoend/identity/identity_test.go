package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newIdentity(t testing.TB, seed byte) *Identity {
	t.Helper()
	id, err := Generate(testrand.New(seed), [32]byte{1}, [32]byte{seed}, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNumericFingerprintVector checks the fingerprint algorithm against
// libsignal's test vector (tests/test_fingerprint.c: 5,200 iterations,
// Curve25519 keys with their 0x05 prefix, phone numbers as stable
// identifiers).
func TestNumericFingerprintVector(t *testing.T) {
	alice, _ := hex.DecodeString("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
	bob, _ := hex.DecodeString("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
	a := numericFingerprint(alice, []byte("+14152222222"))
	b := numericFingerprint(bob, []byte("+14153333333"))
	if b < a {
		a, b = b, a
	}
	if got, want := a+b, "300354477692869396892869876765458257569162576843440918079131"; got != want {
		t.Fatalf("fingerprint %s, want %s", got, want)
	}
}

func TestCardRoundTrip(t *testing.T) {
	card := newIdentity(t, 1).Card()
	b, err := card.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != CardSize {
		t.Fatalf("%d bytes, want %d", len(b), CardSize)
	}
	got, err := ParseCard(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatal("re-encoding differs")
	}
	text, err := card.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	pasted := append([]byte("Here is my card:\n\n"), text...)
	fromText, err := ParseCardText(pasted)
	if err != nil {
		t.Fatal(err)
	}
	if fromText.DHKey != card.DHKey || fromText.Mailbox != card.Mailbox || !fromText.Prekey.Created.Equal(now) {
		t.Fatal("the text form lost something")
	}
}

// TestCardSignatures checks that changing any part of a card (every byte
// but the magic and version, which fail earlier) makes it refused.
func TestCardSignatures(t *testing.T) {
	b, _ := newIdentity(t, 2).Card().MarshalBinary()
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		if _, err := ParseCard(bad); !errors.Is(err, ErrCard) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	// A prekey signed by another identity's key is refused with a clear
	// error.
	other := newIdentity(t, 3).Card()
	mixed := newIdentity(t, 2).Card()
	mixed.Prekey = other.Prekey
	if err := mixed.Verify(); err == nil || !strings.Contains(err.Error(), "X25519 prekey's signature") {
		t.Fatalf("foreign prekey: %v", err)
	}
	for _, n := range []int{0, 10, CardSize - 1, CardSize + 1} {
		if _, err := ParseCard(make([]byte, n)); !errors.Is(err, ErrCard) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if _, err := ParseCardText([]byte("no card here")); !errors.Is(err, ErrCard) {
		t.Fatal("text without a card was accepted")
	}
}

func TestSafetyNumber(t *testing.T) {
	alice, bob, mallory := newIdentity(t, 4).Card(), newIdentity(t, 5).Card(), newIdentity(t, 6).Card()
	ab, ba := SafetyNumber(alice, bob), SafetyNumber(bob, alice)
	if ab != ba {
		t.Fatalf("the two sides see %s and %s", ab, ba)
	}
	if !regexp.MustCompile(`^(\d{5} ){11}\d{5}$`).MatchString(ab) {
		t.Fatalf("safety number %q is not 12 groups of 5 digits", ab)
	}
	if SafetyNumber(alice, mallory) == ab {
		t.Fatal("a different card gave the same safety number")
	}
	// Replacing only the signing key changes the number too.
	swapped := *bob
	swapped.SigningKey = mallory.SigningKey
	if SafetyNumber(alice, &swapped) == ab {
		t.Fatal("the safety number does not cover the signing key")
	}
}

// FuzzParseCard checks that the card decoder never panics, fails only with
// ErrCard, and that what it accepts re-encodes to the same bytes.
func FuzzParseCard(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseCard"))
	if err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCard(b)
		if err != nil {
			if !errors.Is(err, ErrCard) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		again, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted card re-encodes differently: %v", err)
		}
	})
}

func BenchmarkSafetyNumber(b *testing.B) {
	alice, bob := newIdentity(b, 7).Card(), newIdentity(b, 8).Card()
	for b.Loop() {
		SafetyNumber(alice, bob)
	}
}

// TestSafetyNumberQR checks that the QR code of a safety number is the same
// on both sides, encodes the digits alone (numeric mode keeps it small) and
// renders as a PNG.
func TestSafetyNumberQR(t *testing.T) {
	alice, bob := newIdentity(t, 10).Card(), newIdentity(t, 11).Card()
	code, err := SafetyNumberQR(SafetyNumber(alice, bob))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(SafetyNumber(alice, bob), " ", ""); code.Content != want || len(want) != 60 {
		t.Fatalf("QR code encodes %q, want the 60 digits %q", code.Content, want)
	}
	if code.VersionNumber > 3 {
		t.Fatalf("QR code of version %d, want at most 3 (numeric mode)", code.VersionNumber)
	}
	other, _ := SafetyNumberQR(SafetyNumber(bob, alice))
	if !reflect.DeepEqual(code.Bitmap(), other.Bitmap()) {
		t.Fatal("the two sides get different QR codes")
	}
	if png, err := code.PNG(64); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no PNG: %v", err)
	}
}

// TestIdentityState checks that a stored identity (with a retired prekey
// pair) comes back whole and re-encodes to the same bytes, and that
// damaged data is refused.
func TestIdentityState(t *testing.T) {
	id := newIdentity(t, 12)
	if err := id.RotatePrekeys(testrand.New(13), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b, err := id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatal("the identity re-encodes differently")
	}
	c1, _ := id.Card().MarshalBinary()
	c2, _ := got.Card().MarshalBinary()
	if !bytes.Equal(c1, c2) || len(got.Retired) != 1 {
		t.Fatal("the restored identity makes another card")
	}
	for _, bad := range [][]byte{nil, b[:50], append(bytes.Clone(b), 0), append([]byte("bcident\x02"), b[8:]...)} {
		if _, err := ParseIdentity(bad); !errors.Is(err, ErrIdentity) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

// FuzzParseIdentity checks that the identity decoder fails only with
// ErrIdentity and re-encodes what it accepts to the same bytes.
func FuzzParseIdentity(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseIdentity")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentity(b)
		if err != nil {
			if !errors.Is(err, ErrIdentity) {
				t.Fatal(err)
			}
			return
		}
		again, err := id.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// TestCardVersions: this release makes version 2 cards, whose owner opens
// sealed envelopes; it still reads and can make version 1 cards for the
// previous release, and refuses versions it does not know.
func TestCardVersions(t *testing.T) {
	id := newIdentity(t, 30)
	for _, v := range []uint8{CardVersion, CardVersionClassical} {
		c := id.CardOfVersion(v)
		raw, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCard(raw)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if got.Version != v || got.OpensSealed() != (v == CardVersion) || got.DHKey != c.DHKey {
			t.Fatalf("version %d parsed as version %d, opens sealed %v", v, got.Version, got.OpensSealed())
		}
		raw[len(cardMagic)] = 3
		if _, err := ParseCard(raw); !errors.Is(err, ErrCard) {
			t.Fatalf("version 3: %v", err)
		}
	}
	if id.Card().Version != CardVersion {
		t.Fatalf("a new card is version %d", id.Card().Version)
	}
	if pairs := id.PrekeyPairs(); len(pairs) != 1 || pairs[0].PQ != id.PQPrekey.Key || pairs[0].X25519 != id.Prekey.Key {
		t.Fatal("the prekey pairs are not the current prekeys")
	}
}
