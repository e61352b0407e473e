package sphinx

import (
	"crypto/subtle"
	"fmt"

	"github.com/cloudflare/circl/kem/xwing"

	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// SecretLength is the length of the secret a node's key for one epoch is made
// from: the X25519 scalar, or the X-Wing seed.
const SecretLength = 32

// PrivateKey is a node's Sphinx key for one epoch, ready for [Format.Unwrap]:
// an X-Wing key is kept expanded (its ML-KEM-768 key unpacked), because
// decapsulating from the 32-byte seed would derive the ML-KEM key again for
// every packet, at about twice the cost.
//
// A PrivateKey may be used by any number of goroutines at once; [PrivateKey.Wipe]
// only when none uses it any more.
type PrivateKey struct {
	scheme Scheme
	secret [SecretLength]byte
	xwing  *xwing.PrivateKey
	public *PublicKey
}

// NewPrivateKey makes the key of scheme s from a 32-byte secret: an X25519
// scalar (clamped when used) or an X-Wing seed (expanded with SHAKE256 as
// X-Wing's key derivation says). The caller keeps and wipes secret.
func NewPrivateKey(s Scheme, secret *[SecretLength]byte) (*PrivateKey, error) {
	k := &PrivateKey{scheme: s, secret: *secret, public: &PublicKey{scheme: s}}
	switch s {
	case X25519:
		if err := x25519.ScalarBaseMult(&k.public.x25519, secret); err != nil {
			return nil, fmt.Errorf("sphinx: X25519 key: %w", err)
		}
		k.public.encoded = k.public.x25519[:]
	case XWing:
		var pk *xwing.PublicKey
		k.xwing, pk = xwing.DeriveKeyPair(secret[:])
		k.public.encoded = make([]byte, xwing.PublicKeySize)
		pk.Pack(k.public.encoded)
		k.public.xwing = pk
		copy(k.public.x25519[:], k.public.encoded[xwingX25519Offset:])
	default:
		return nil, fmt.Errorf("sphinx: no keys for the %v packet format", s)
	}
	return k, nil
}

// Scheme is the key's scheme.
func (k *PrivateKey) Scheme() Scheme { return k.scheme }

// Public returns the key's public half, as a node publishes it.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// Wipe overwrites the key's secret, and the X25519 half and seed of an X-Wing
// key. CIRCL keeps the ML-KEM-768 secret vector behind a pointer that it does
// not let us reach: it is left to the garbage collector, a limit the node's
// documentation names.
func (k *PrivateKey) Wipe() {
	clear(k.secret[:])
	if k.xwing != nil {
		*k.xwing = xwing.PrivateKey{}
	}
}

// xwingX25519Offset is where an X-Wing public key's X25519 part starts, after
// the ML-KEM-768 encapsulation key.
const xwingX25519Offset = xwing.PublicKeySize - x25519.Size

// PublicKey is a node's public Sphinx key for one epoch, parsed once (an
// X-Wing key's ML-KEM matrix expanded) so that packet creation does not parse
// it again for every packet.
type PublicKey struct {
	scheme  Scheme
	encoded []byte
	x25519  [x25519.Size]byte
	xwing   *xwing.PublicKey
}

// ParsePublicKey parses a node's public key of scheme s: 32 bytes for X25519,
// 1,216 for X-Wing (the ML-KEM-768 encapsulation key, then the X25519 key).
// It refuses a key no packet can safely be made for: an X25519 part of low
// order (the shared secret would be all zeros) or an ML-KEM-768 key that fails
// FIPS 203's modulus check.
func ParsePublicKey(s Scheme, b []byte) (*PublicKey, error) {
	if !s.known() {
		return nil, fmt.Errorf("sphinx: no keys for the %v packet format", s)
	}
	if len(b) != s.PublicKeyLength() {
		return nil, fmt.Errorf("sphinx: %v public key of %d bytes, want %d", s, len(b), s.PublicKeyLength())
	}
	k := &PublicKey{scheme: s, encoded: append([]byte(nil), b...)}
	copy(k.x25519[:], b[len(b)-x25519.Size:])
	if x25519.IsLowOrder(&k.x25519) {
		return nil, fmt.Errorf("sphinx: %v public key %x has a low-order X25519 part", s, k.x25519)
	}
	if s == XWing {
		k.xwing = new(xwing.PublicKey)
		if err := k.xwing.Unpack(k.encoded); err != nil {
			return nil, fmt.Errorf("sphinx: X-Wing public key: its ML-KEM-768 part fails the modulus check: %w", err)
		}
	}
	return k, nil
}

// Scheme is the key's scheme.
func (k *PublicKey) Scheme() Scheme { return k.scheme }

// Bytes is the key's encoding, as ParsePublicKey reads it. The caller must
// not modify it.
func (k *PublicKey) Bytes() []byte { return k.encoded }

// Equal reports whether k and o are the same key of the same scheme.
func (k *PublicKey) Equal(o *PublicKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.scheme == o.scheme && subtle.ConstantTimeCompare(k.encoded, o.encoded) == 1
}

// String is a short form for logs: the scheme and the key's first bytes.
func (k *PublicKey) String() string {
	return fmt.Sprintf("%v:%x", k.scheme, k.encoded[:8])
}
