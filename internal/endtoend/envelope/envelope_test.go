package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

const payloadSize = 3200

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

// prekeyPair is a recipient's prekeys: what senders seal to, and what
// opens it.
type prekeyPair struct {
	public Prekeys
	opener hpke.PrivateKey
}

func testPrekeys(t testing.TB, seed string) prekeyPair {
	t.Helper()
	x := testKey(t, seed+" x25519")
	s := make([]byte, mlkem.SeedSize)
	testrand.New([]byte(seed + " ml-kem")...).Read(s)
	pq, err := mlkem.NewDecapsulationKey768(s)
	if err != nil {
		t.Fatal(err)
	}
	opener, err := PrekeyOpener(pq, x)
	if err != nil {
		t.Fatal(err)
	}
	return prekeyPair{public: Prekeys{PQ: pq.EncapsulationKey(), X25519: x.PublicKey()}, opener: opener}
}

// messageContents is a KindMessage: a session message whose ack comes back
// as a forward packet.
func messageContents() *Contents {
	c := sessionContents()
	c.Kind, c.SURB, c.AckID = KindMessage, nil, [AckIDSize]byte{0xdd, 0xee}
	return c
}

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

// form seals contents in one of the three forms, for a recipient whose
// keys opens them.
type form struct {
	name string
	seal func(t testing.TB, c *Contents) ([]byte, error)
	// keyed: the form does not carry the sender.
	keyed bool
}

type recipient struct {
	identity *ecdh.PrivateKey
	prekeys  prekeyPair
	key      [KeySize]byte
}

func newRecipient(t testing.TB, seed string) recipient {
	r := recipient{identity: testKey(t, seed), prekeys: testPrekeys(t, seed)}
	testrand.New([]byte(seed + " keyed")...).Read(r.key[:])
	return r
}

func (r recipient) keys(others ...*[KeySize]byte) *Keys {
	return &Keys{Keyed: append(others, &r.key), Prekeys: []hpke.PrivateKey{r.prekeys.opener}, Identity: r.identity}
}

func (r recipient) forms() []form {
	rng := testrand.New(7)
	return []form{
		{name: "sealed", seal: func(_ testing.TB, c *Contents) ([]byte, error) {
			return Seal(rng, r.prekeys.public, c, payloadSize)
		}},
		{name: "classical", seal: func(_ testing.TB, c *Contents) ([]byte, error) {
			return SealClassical(recipientOf(r.identity), c, payloadSize)
		}},
		{name: "keyed", keyed: true, seal: func(_ testing.TB, c *Contents) ([]byte, error) {
			return SealKeyed(rng, &r.key, c, payloadSize)
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	bob := newRecipient(t, "bob")
	other := [KeySize]byte{9}
	loop := &Contents{Kind: KindLoop, LoopID: [LoopIDSize]byte{9, 9}}
	noInitial := sessionContents()
	noInitial.Initial = nil
	ack := &Contents{Kind: KindAck, AckID: [AckIDSize]byte{7, 7, 7}}
	batch := &Contents{Kind: KindAckBatch, AckIDs: [][AckIDSize]byte{{1, 2}, {3, 4}, {5}}}
	empty := &Contents{Kind: KindAckBatch, AckIDs: [][AckIDSize]byte{}}
	for _, f := range bob.forms() {
		for _, c := range []*Contents{loop, sessionContents(), noInitial, messageContents(), ack, batch, empty} {
			sealed, err := f.seal(t, c)
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			if len(sealed) != payloadSize {
				t.Fatalf("%s: sealed %d bytes, want %d", f.name, len(sealed), payloadSize)
			}
			got, err := Open(bob.keys(&other), sealed)
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			want := *c
			wantKeyed := -1
			if f.keyed {
				want.Sender, wantKeyed = [KeySize]byte{}, 1
			}
			if c.Kind == KindAck || c.Kind == KindLoop || c.Kind == KindAckBatch {
				want.Sender = [KeySize]byte{}
			}
			if got.Keyed != wantKeyed || got.Kind != want.Kind || got.LoopID != want.LoopID || got.Sender != want.Sender || !bytes.Equal(got.SURB, want.SURB) || got.AckID != want.AckID ||
				!slices.Equal(got.AckIDs, want.AckIDs) ||
				!bytes.Equal(got.Initial, want.Initial) || !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Ciphertext, want.Ciphertext) {
				t.Fatalf("%s, kind %d: opened %+v", f.name, c.Kind, got)
			}
		}
	}
}

// Every payload is one size and looks random, whatever it holds: the
// recipient's provider must not tell a loop from a session's first message.
func TestSameSizeWhateverTheContents(t *testing.T) {
	for _, f := range newRecipient(t, "bob").forms() {
		a, _ := f.seal(t, &Contents{Kind: KindLoop})
		b, _ := f.seal(t, sessionContents())
		if len(a) != len(b) {
			t.Fatalf("%s: a loop seals to %d bytes, a session message to %d", f.name, len(a), len(b))
		}
		// A sealed loop is mostly encrypted zero padding: it must not show.
		if zeros := bytes.Count(a[1:], []byte{0}); zeros > len(a)/64 {
			t.Fatalf("%s: a sealed loop packet has %d zero bytes of %d", f.name, zeros, len(a))
		}
	}
}

// TestTopBitRandomised: the sealed form's X25519 ephemeral key, whose
// encoding always has its top bit clear, has it set in about half the
// payloads, which still open.
func TestTopBitRandomised(t *testing.T) {
	bob := newRecipient(t, "bob")
	seal := bob.forms()[0].seal
	set := 0
	const n = 64
	for range n {
		p, err := seal(t, sessionContents())
		if err != nil {
			t.Fatal(err)
		}
		if p[sealedEncLength]&topBit != 0 {
			set++
		}
		if _, err := Open(bob.keys(), p); err != nil {
			t.Fatal(err)
		}
	}
	if set < n/4 || set > 3*n/4 {
		t.Fatalf("the top bit was set in %d of %d payloads", set, n)
	}
}

func TestWrongKeyOrDamage(t *testing.T) {
	bob, eve := newRecipient(t, "bob"), newRecipient(t, "eve")
	for _, f := range bob.forms() {
		sealed, err := f.seal(t, sessionContents())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(eve.keys(), sealed); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: opened with the wrong keys: %v", f.name, err)
		}
		for _, i := range []int{1, 40, 1000, 1100, len(sealed) - 1} {
			damaged := bytes.Clone(sealed)
			damaged[i] ^= 1
			if _, err := Open(bob.keys(), damaged); !errors.Is(err, ErrOpen) {
				t.Fatalf("%s: byte %d flipped: %v", f.name, i, err)
			}
		}
		bad := bytes.Clone(sealed)
		bad[0] = 3
		if _, err := Open(bob.keys(), bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: version 3: %v", f.name, err)
		}
		if _, err := Open(bob.keys(), sealed[:10]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: truncated: %v", f.name, err)
		}
	}
}

func TestDoesNotFit(t *testing.T) {
	bob := newRecipient(t, "bob")
	rng := testrand.New(8)
	for name, seal := range map[string]func(*Contents) ([]byte, error){
		"sealed, with an Initial": func(c *Contents) ([]byte, error) { return Seal(rng, bob.prekeys.public, c, payloadSize) },
		"classical, without":      func(c *Contents) ([]byte, error) { return SealClassical(recipientOf(bob.identity), c, payloadSize) },
	} {
		for _, c := range []*Contents{sessionContents(), messageContents()} {
			if name == "classical, without" {
				c.Initial = nil
			}
			room := SessionRoom(payloadSize, len(c.SURB), len(c.Initial))
			if c.Kind == KindMessage {
				room = MessageRoom(payloadSize, len(c.Initial))
			}
			c.Ciphertext = make([]byte, room-len(c.Header)+1)
			if _, err := seal(c); err == nil {
				t.Fatalf("%s, kind %d: sealed contents one byte too long", name, c.Kind)
			}
			c.Ciphertext = c.Ciphertext[1:]
			if _, err := seal(c); err != nil {
				t.Fatalf("%s, kind %d: contents that exactly fit: %v", name, c.Kind, err)
			}
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":           {},
		"unknown kind":    {7},
		"short loop":      {byte(KindLoop), 1, 2},
		"nonzero padding": append(append([]byte{byte(KindLoop)}, make([]byte, LoopIDSize)...), 0, 1),
		"short session":   {byte(KindSession), 0, 0, 0, 0, 0},
	} {
		for _, withSender := range []bool{true, false} {
			if _, err := decodeContents(data, withSender); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s (sender %v): %v", name, withSender, err)
			}
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
	bob := newRecipient(f, "bob")
	for _, form := range bob.forms() {
		for _, c := range []*Contents{{Kind: KindLoop}, sessionContents()} {
			sealed, err := form.seal(f, c)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(sealed)
		}
	}
	rng := testrand.New(9)
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Open(bob.keys(), data)
		if err != nil {
			if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		var resealed []byte
		if o.Keyed >= 0 {
			resealed, err = SealKeyed(rng, &bob.key, &o.Contents, len(data))
		} else {
			resealed, err = SealClassical(recipientOf(bob.identity), &o.Contents, len(data))
		}
		if err != nil {
			t.Fatalf("opened contents do not seal again: %v", err)
		}
		if _, err := Open(bob.keys(), resealed); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecode reaches the contents decoder, which the fuzzer cannot reach
// through the AEAD.
func FuzzDecode(f *testing.F) {
	for _, c := range []*Contents{{Kind: KindLoop}, sessionContents(), messageContents(), {Kind: KindAck, AckID: [AckIDSize]byte{1}},
		{Kind: KindAckBatch, AckIDs: [][AckIDSize]byte{{1}, {2}}}, {Kind: KindAckBatch}} {
		b, _ := c.encode(true)
		f.Add(b, true)
		b, _ = c.encode(false)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, withSender bool) {
		c, err := decodeContents(data, withSender)
		if err != nil {
			return
		}
		again, err := c.encode(withSender)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data[:len(again)]) {
			t.Fatalf("decode then encode differs")
		}
	})
}

// TestAckBatchCapacity: a batch of AckBatchCapacity IDs fills a keyed
// payload, and one more does not fit.
func TestAckBatchCapacity(t *testing.T) {
	var key [KeySize]byte
	for _, size := range []int{payloadSize, 3200} {
		n := AckBatchCapacity(size)
		c := &Contents{Kind: KindAckBatch, AckIDs: make([][AckIDSize]byte, n)}
		if _, err := SealKeyed(rand.Reader, &key, c, size); err != nil {
			t.Fatalf("%d IDs in a %d-byte payload: %v", n, size, err)
		}
		c.AckIDs = append(c.AckIDs, [AckIDSize]byte{})
		if _, err := SealKeyed(rand.Reader, &key, c, size); !errors.Is(err, ErrTooLong) {
			t.Fatalf("%d IDs in a %d-byte payload: %v", n+1, size, err)
		}
	}
	if n := AckBatchCapacity(3200); n < 190 {
		t.Fatalf("a 3,200-byte payload holds %d ack IDs", n)
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) { ParseAck(data) })
}
