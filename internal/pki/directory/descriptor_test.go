package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

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
	testrand.New(seed, 3).Read(d.SphinxKey[:])
	testrand.New(seed, 4).Read(d.NextSphinxKey[:])
	return d, key
}

func TestDescriptor(t *testing.T) {
	d, key := testDescriptor(t, 0)
	raw, err := d.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDescriptor(raw)
	if err != nil || got.Name != d.Name || got.NextSphinxKey != d.NextSphinxKey || !got.IdentityKey.Equal(d.IdentityKey) {
		t.Fatalf("%+v, %v", got, err)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if _, err := ParseDescriptor(bad); !errors.Is(err, ErrDescriptor) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	_, otherKey := testDescriptor(t, 1)
	if _, err := d.Sign(otherKey); err == nil {
		t.Fatal("signed a descriptor with another node's key")
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
