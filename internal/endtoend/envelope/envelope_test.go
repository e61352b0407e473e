package envelope

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

const payloadSize = 2048

func testKey(t testing.TB, seed string) *ecdh.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	testrand.New([]byte(seed)...).Read(b)
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func recipientOf(k *ecdh.PrivateKey) [KeySize]byte { return [KeySize]byte(k.PublicKey().Bytes()) }

func sessionContents() *Contents {
	return &Contents{
		Kind:       KindSession,
		Sender:     [KeySize]byte{1, 2, 3},
		SURB:       bytes.Repeat([]byte{0xaa}, 684),
		Initial:    bytes.Repeat([]byte{0xbb}, 1161),
		Header:     bytes.Repeat([]byte{0xcc}, 80),
		Ciphertext: []byte("ciphertext"),
	}
}

func TestRoundTrip(t *testing.T) {
	key := testKey(t, "bob")
	loop := &Contents{Kind: KindLoop, LoopID: [LoopIDSize]byte{9, 9}}
	noInitial := sessionContents()
	noInitial.Initial = nil
	for _, c := range []*Contents{loop, sessionContents(), noInitial} {
		sealed, err := Seal(recipientOf(key), c, payloadSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != payloadSize {
			t.Fatalf("sealed %d bytes, want %d", len(sealed), payloadSize)
		}
		got, err := Open(key, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != c.Kind || got.LoopID != c.LoopID || got.Sender != c.Sender || !bytes.Equal(got.SURB, c.SURB) ||
			!bytes.Equal(got.Initial, c.Initial) || !bytes.Equal(got.Header, c.Header) || !bytes.Equal(got.Ciphertext, c.Ciphertext) {
			t.Fatalf("kind %d: opened %+v", c.Kind, got)
		}
	}
}

// Every payload is one size and looks random, whatever it holds: the
// recipient's provider must not tell a loop from a session's first message.
func TestSameSizeWhateverTheContents(t *testing.T) {
	key := testKey(t, "bob")
	a, _ := Seal(recipientOf(key), &Contents{Kind: KindLoop}, payloadSize)
	b, _ := Seal(recipientOf(key), sessionContents(), payloadSize)
	if len(a) != len(b) {
		t.Fatalf("a loop seals to %d bytes, a session message to %d", len(a), len(b))
	}
	// A sealed loop is mostly encrypted zero padding: it must not show.
	zeros := bytes.Count(a[Overhead:], []byte{0})
	if zeros > len(a)/64 {
		t.Fatalf("a sealed loop packet has %d zero bytes of %d", zeros, len(a))
	}
}

func TestWrongKeyOrDamage(t *testing.T) {
	key := testKey(t, "bob")
	sealed, err := Seal(recipientOf(key), sessionContents(), payloadSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testKey(t, "eve"), sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened with the wrong key: %v", err)
	}
	for _, i := range []int{1, 40, 1000, len(sealed) - 1} {
		damaged := bytes.Clone(sealed)
		damaged[i] ^= 1
		if _, err := Open(key, damaged); !errors.Is(err, ErrOpen) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	bad := bytes.Clone(sealed)
	bad[0] = 2
	if _, err := Open(key, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 2: %v", err)
	}
	if _, err := Open(key, sealed[:10]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestDoesNotFit(t *testing.T) {
	c := sessionContents()
	c.Ciphertext = make([]byte, SessionRoom(payloadSize, len(c.SURB), len(c.Initial))-len(c.Header)+1)
	if _, err := Seal(recipientOf(testKey(t, "bob")), c, payloadSize); err == nil {
		t.Fatal("sealed contents one byte too long")
	}
	c.Ciphertext = c.Ciphertext[1:]
	if _, err := Seal(recipientOf(testKey(t, "bob")), c, payloadSize); err != nil {
		t.Fatalf("contents that exactly fit: %v", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":           {},
		"unknown kind":    {7},
		"short loop":      {byte(KindLoop), 1, 2},
		"nonzero padding": append(append([]byte{byte(KindLoop)}, make([]byte, LoopIDSize)...), 0, 1),
		"short session":   append([]byte{byte(KindSession)}, make([]byte, 33)...),
	} {
		if _, err := decodeContents(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAck(t *testing.T) {
	b, _ := Ack{}.MarshalBinary()
	padded := append(b, make([]byte, 100)...)
	if _, err := ParseAck(padded); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"short": {1}, "version": {2, 1}, "kind": {1, 2}, "padding": {1, 1, 0, 3},
	} {
		if _, err := ParseAck(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	key := testKey(f, "bob")
	for _, c := range []*Contents{{Kind: KindLoop}, sessionContents()} {
		sealed, err := Seal(recipientOf(key), c, payloadSize)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Open(key, data)
		if err != nil {
			return
		}
		resealed, err := Seal(recipientOf(key), &c, len(data))
		if err != nil {
			t.Fatalf("opened contents do not seal again: %v", err)
		}
		if _, err := Open(key, resealed); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecode reaches the contents decoder, which the fuzzer cannot reach
// through the AEAD.
func FuzzDecode(f *testing.F) {
	for _, c := range []*Contents{{Kind: KindLoop}, sessionContents()} {
		b, _ := c.encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeContents(data)
		if err != nil {
			return
		}
		again, err := c.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data[:len(again)]) {
			t.Fatalf("decode then encode differs")
		}
	})
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) { ParseAck(data) })
}
