package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/testrand"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

var epochStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// testDocument makes a valid document: 2 providers and 2 mixes per layer,
// of the default packet format.
func testDocument(t testing.TB, seed byte) *Document {
	return testDocumentOf(t, seed, sphinx.DefaultGeometry.Scheme)
}

// testSphinxKey makes a public Sphinx key of scheme s from rng.
func testSphinxKey(t testing.TB, rng *rand.Rand, s sphinx.Scheme) *sphinx.PublicKey {
	var secret [sphinx.SecretLength]byte
	testrand.Reader{Rand: rng}.Read(secret[:])
	key, err := sphinx.NewPrivateKey(s, &secret)
	if err != nil {
		t.Fatal(err)
	}
	return key.Public()
}

// testDocumentOf is testDocument with packet format s.
func testDocumentOf(t testing.TB, seed byte, s sphinx.Scheme) *Document {
	g := sphinx.DefaultGeometry
	g.Scheme = s
	rng := rand.New(rand.NewChaCha8([32]byte{seed}))
	d := &Document{
		Epoch:      42,
		ValidFrom:  epochStart,
		ValidUntil: epochStart.Add(20 * time.Minute),
		Parameters: Parameters{
			Layers: 3, MeanDelay: 50 * time.Millisecond,
			SendRate: 2, LoopRate: 0.5, DropRate: 0.5, MixLoopRate: 1,
			PollInterval: 2 * time.Second, Geometry: g,
		},
	}
	add := func(name string, role Role, layer uint8) {
		pub, _, err := ed25519.GenerateKey(testrand.Reader{Rand: rng})
		if err != nil {
			t.Fatal(err)
		}
		n := Node{Name: name, Role: role, Layer: layer, IdentityKey: pub, Address: fmt.Sprintf("127.0.0.1:%d", 30000+len(d.Nodes))}
		testrand.Reader{Rand: rng}.Read(n.LinkKey[:])
		n.SphinxKey = testSphinxKey(t, rng, s)
		d.Nodes = append(d.Nodes, n)
	}
	add("provider-a", RoleProvider, 0)
	add("provider-b", RoleProvider, 0)
	for layer := uint8(1); layer <= 3; layer++ {
		add(fmt.Sprintf("mix-%d-a", layer), RoleMix, layer)
		add(fmt.Sprintf("mix-%d-b", layer), RoleMix, layer)
	}
	return d
}

func authority(seed byte) ed25519.PrivateKey {
	_, priv, _ := ed25519.GenerateKey(testrand.New(100, seed))
	return priv
}

func signedBytes(t testing.TB, d *Document, signers ...ed25519.PrivateKey) []byte {
	doc, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s := Signed{Document: doc}
	for _, a := range signers {
		s.Signatures = append(s.Signatures, Sign(doc, a))
	}
	out, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, s := range sphinx.Schemes {
		t.Run(s.String(), func(t *testing.T) { testRoundTrip(t, s) })
	}
}

func testRoundTrip(t *testing.T, s sphinx.Scheme) {
	d := testDocumentOf(t, 1, s)
	data, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// An X25519 document keeps version 1, which earlier releases read.
	if wantVersion := map[sphinx.Scheme]byte{sphinx.X25519: 1, sphinx.XWing: 2}[s]; data[len(documentMagic)] != wantVersion {
		t.Fatalf("a %v document of version %d, want %d", s, data[len(documentMagic)], wantVersion)
	}
	var got Document
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	again, err := got.MarshalBinary()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	if got.Epoch != 42 || !got.ValidFrom.Equal(d.ValidFrom) || got.Parameters != d.Parameters || len(got.Nodes) != 8 {
		t.Fatalf("decoded %+v", got)
	}
	if len(got.Layer(2)) != 2 || len(got.Providers()) != 2 || got.Node(d.Nodes[3].IdentityKey).Name != "mix-1-b" {
		t.Fatal("lookups on the decoded document are wrong")
	}
	for i := range got.Nodes {
		if !got.Nodes[i].SphinxKey.Equal(d.Nodes[i].SphinxKey) {
			t.Fatalf("node %d's Sphinx key changed in the round trip", i)
		}
	}
}

func TestVerify(t *testing.T) {
	a, b, c := authority(1), authority(2), authority(3)
	pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
	oneOfOne := Trust{Authorities: []ed25519.PublicKey{pub(a)}, Threshold: 1, ClockSkew: time.Minute}
	twoOfThree := Trust{Authorities: []ed25519.PublicKey{pub(a), pub(b), pub(c)}, Threshold: 2, ClockSkew: time.Minute}
	now := epochStart.Add(time.Minute)
	d := testDocument(t, 2)

	if got, err := Verify(signedBytes(t, d, a), oneOfOne, now); err != nil || got.Epoch != 42 {
		t.Fatalf("1-of-1: %v", err)
	}
	if _, err := Verify(signedBytes(t, d, a, c), twoOfThree, now); err != nil {
		t.Fatalf("2-of-3 with two signatures: %v", err)
	}
	stranger := authority(9)
	for name, tc := range map[string]struct {
		data  []byte
		trust Trust
		now   time.Time
		want  error
	}{
		"unsigned":        {signedBytes(t, d), oneOfOne, now, ErrUnsigned},
		"wrong authority": {signedBytes(t, d, stranger), oneOfOne, now, ErrSignatures},
		"one of two":      {signedBytes(t, d, b), twoOfThree, now, ErrSignatures},
		"same twice":      {signedBytes(t, d, b, b), twoOfThree, now, ErrSignatures},
		"expired":         {signedBytes(t, d, a), oneOfOne, d.ValidUntil.Add(2 * time.Minute), ErrExpired},
		"not yet valid":   {signedBytes(t, d, a), oneOfOne, epochStart.Add(-2 * time.Minute), ErrNotYetValid},
		"garbage":         {[]byte("hello"), oneOfOne, now, ErrMalformed},
	} {
		if _, err := Verify(tc.data, tc.trust, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// Within the clock skew either side.
	for _, at := range []time.Time{epochStart.Add(-30 * time.Second), d.ValidUntil.Add(30 * time.Second)} {
		if _, err := Verify(signedBytes(t, d, a), oneOfOne, at); err != nil {
			t.Errorf("at %v (inside the skew): %v", at, err)
		}
	}
	// A signature over a modified document does not count.
	data := signedBytes(t, d, a)
	var s Signed
	if err := s.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	s.Document[len(s.Document)-1] ^= 1
	tampered, _ := s.MarshalBinary()
	if _, err := Verify(tampered, oneOfOne, now); !errors.Is(err, ErrSignatures) {
		t.Errorf("tampered document: %v, want ErrSignatures", err)
	}
}

// TestValidate checks that each inconsistency is refused with a message that
// names it.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d *Document)
		want   string
	}{
		{"validity", func(d *Document) { d.ValidUntil = d.ValidFrom }, "before it starts"},
		{"layers", func(d *Document) { d.Parameters.Layers = 0 }, "0 mix layers"},
		{"rate", func(d *Document) { d.Parameters.LoopRate = -1 }, "rate of -1"},
		{"geometry", func(d *Document) { d.Parameters.Geometry.MaxHops = 0 }, "0 hops"},
		{"mix layer", func(d *Document) { d.Nodes[2].Layer = 4 }, "in layer 4"},
		{"provider layer", func(d *Document) { d.Nodes[0].Layer = 1 }, "provider \"provider-a\" in layer 1"},
		{"role", func(d *Document) { d.Nodes[0].Role = 7 }, "unknown role(7)"},
		{"identity", func(d *Document) { d.Nodes[1].IdentityKey = d.Nodes[0].IdentityKey }, "repeats an identity key"},
		{"name", func(d *Document) { d.Nodes[1].Name = d.Nodes[0].Name }, "appears twice"},
		{"empty address", func(d *Document) { d.Nodes[1].Address = "" }, "address is empty"},
		{"same address", func(d *Document) { d.Nodes[1].Address = d.Nodes[0].Address }, "appears twice"},
		{"empty layer", func(d *Document) { d.Nodes = d.Nodes[:6] }, "no mix in layer 3"},
		{"no provider", func(d *Document) { d.Nodes = d.Nodes[2:] }, "no provider"},
		{"no Sphinx key", func(d *Document) { d.Nodes[1].SphinxKey = nil }, "has no"},
		{"other format's key", func(d *Document) {
			d.Nodes[1].SphinxKey = testSphinxKey(t, rand.New(rand.NewChaCha8([32]byte{})), 1-d.Parameters.Geometry.Scheme)
		}, "Sphinx key, the network's packet format"},
	} {
		d := testDocument(t, 3)
		tc.change(d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if _, err := d.MarshalBinary(); err == nil {
			t.Errorf("%s: an invalid document was encoded", tc.name)
		}
	}
}

// TestDecodeStrict checks truncations, trailing bytes, versions and packet
// formats.
func TestDecodeStrict(t *testing.T) {
	for _, s := range sphinx.Schemes {
		data, err := testDocumentOf(t, 4, s).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// Every truncation of an X25519 document; of the 10 KB keys of an
		// X-Wing one, a sample.
		for n := 0; n < len(data); n++ {
			var d Document
			if err := d.UnmarshalBinary(data[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v: truncated to %d bytes: %v", s, n, err)
			}
			if s != sphinx.X25519 && n > 200 {
				n += 97
			}
		}
		var d Document
		if err := d.UnmarshalBinary(append(bytes.Clone(data), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%v: trailing byte: %v", s, err)
		}
		v3 := bytes.Clone(data)
		v3[len(documentMagic)] = 3
		if err := d.UnmarshalBinary(v3); err == nil || !strings.Contains(err.Error(), "version 3") {
			t.Fatalf("%v: version 3: %v", s, err)
		}
	}
	// A version-2 document of a packet format this release does not know
	// names it; version 2 does not carry the X25519 format.
	data, err := testDocumentOf(t, 4, sphinx.XWing).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	formatAt := bytes.Index(data, []byte{0, 0, 0x0c, 0x80}) + 4 // after the 3,200-byte payload length
	for _, format := range []byte{7, byte(sphinx.X25519)} {
		bad := bytes.Clone(data)
		bad[formatAt] = format
		var d Document
		if err := d.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "does not know") {
			t.Fatalf("packet format %d in version 2: %v", format, err)
		}
	}
}
