package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// testDescriptor is a provider's descriptor for epoch 7 and its key.
func testDescriptor(t testing.TB, seed byte) (Descriptor, ed25519.PrivateKey) {
	t.Helper()
	s := make([]byte, 32)
	testrand.New(seed, 1).Read(s)
	key := ed25519.NewKeyFromSeed(s)
	d := Descriptor{Epoch: 7, Role: RoleProvider, Name: "provider-0", IdentityKey: key.Public().(ed25519.PublicKey), Address: "10.0.0.1:3000"}
	testrand.New(seed, 2).Read(d.LinkKey[:])
	rng := rand.New(rand.NewChaCha8([32]byte{seed, 3}))
	for _, s := range []sphinx.Scheme{sphinx.X25519, sphinx.XWing} {
		d.SphinxKeys = append(d.SphinxKeys, SphinxKeys{Current: testSphinxKey(t, rng, s), Next: testSphinxKey(t, rng, s)})
	}
	return d, key
}

func TestDescriptor(t *testing.T) {
	d, key := testDescriptor(t, 0)
	x25519Only := d
	x25519Only.SphinxKeys = d.SphinxKeys[:1]
	for _, tc := range []struct {
		name    string
		d       Descriptor
		version byte
	}{{"both formats", d, 2}, {"X25519 only", x25519Only, 1}} {
		raw, err := tc.d.Sign(key)
		if err != nil {
			t.Fatal(err)
		}
		if raw[len(descriptorMagic)] != tc.version {
			t.Fatalf("%s: version %d, want %d", tc.name, raw[len(descriptorMagic)], tc.version)
		}
		got, err := ParseDescriptor(raw)
		if err != nil || got.Name != tc.d.Name || !got.IdentityKey.Equal(tc.d.IdentityKey) || len(got.SphinxKeys) != len(tc.d.SphinxKeys) {
			t.Fatalf("%s: %+v, %v", tc.name, got, err)
		}
		for _, want := range tc.d.SphinxKeys {
			k, ok := got.Keys(want.Scheme())
			if !ok || !k.Current.Equal(want.Current) || !k.Next.Equal(want.Next) {
				t.Fatalf("%s: the %v keys did not survive", tc.name, want.Scheme())
			}
		}
		// Every byte of the short one; of the 5 KB of X-Wing keys, a
		// sample.
		for i := 0; i < len(raw); i++ {
			bad := bytes.Clone(raw)
			bad[i] ^= 1
			if _, err := ParseDescriptor(bad); !errors.Is(err, ErrDescriptor) {
				t.Fatalf("%s: byte %d flipped: %v", tc.name, i, err)
			}
			if tc.version == 2 && i > 200 {
				i += 31
			}
		}
	}
	if _, ok := x25519Only.Keys(sphinx.XWing); ok {
		t.Fatal("an X25519-only descriptor offers X-Wing keys")
	}
	_, otherKey := testDescriptor(t, 1)
	if _, err := d.Sign(otherKey); err == nil {
		t.Fatal("signed a descriptor with another node's key")
	}
	for name, keys := range map[string][]SphinxKeys{
		"no keys":      nil,
		"twice":        {d.SphinxKeys[0], d.SphinxKeys[0]},
		"out of order": {d.SphinxKeys[1], d.SphinxKeys[0]},
		"mixed pair":   {{Current: d.SphinxKeys[0].Current, Next: d.SphinxKeys[1].Next}},
	} {
		bad := d
		bad.SphinxKeys = keys
		if _, err := bad.Sign(key); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func FuzzParseDescriptor(f *testing.F) {
	d, key := testDescriptor(f, 0)
	raw, err := d.Sign(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			return
		}
		if body, err := d.body(); err != nil || !bytes.Equal(body, b[:len(b)-ed25519.SignatureSize]) {
			t.Fatal("a parsed descriptor does not encode back")
		}
	})
}
