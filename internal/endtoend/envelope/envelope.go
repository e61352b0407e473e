// Package envelope is the end-to-end layer inside a Sphinx payload: what a
// client puts in the user payload of every packet it addresses to a mailbox,
// and what the SURB replies it gets back carry.
//
// A forward packet's payload is sealed to the recipient's X25519 identity key
// with HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305, from crypto/hpke):
//
//	u8 version | HPKE enc [32] | HPKE ciphertext of the Contents, zero-padded
//
// so that the recipient's provider, which removes the last Sphinx layer and
// stores the payload, sees a uniformly random blob of one size whether it
// holds a loop packet, the first message of a session or a fragment of a
// file, and learns neither the sender nor the session. Base mode has no
// sender authentication: authenticity comes from the session inside, which
// keeps messages deniable.
//
// A SURB reply's payload is already readable only by the SURB's creator; it
// carries an [Ack].
//
// It does not encrypt session messages (the session package does) or cut
// messages into fragments (the fragment package does).
package envelope

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

const (
	// Version is the first byte of every sealed payload and ack.
	Version = 1
	// encLength is the HPKE encapsulated key's length for DHKEM(X25519).
	encLength = 32
	// tagLength is ChaCha20-Poly1305's tag length.
	tagLength = 16
	// Overhead is what sealing adds to the Contents.
	Overhead = 1 + encLength + tagLength
	// LoopIDSize is the length of a loop packet's identifier.
	LoopIDSize = 16
	// KeySize is the length of an identity key.
	KeySize = 32
)

// hpkeInfo binds the HPKE context to this use and version.
const hpkeInfo = "backchannel envelope v1"

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("envelope: malformed")

// ErrOpen: a payload does not open under the key (not for us, or damaged).
var ErrOpen = errors.New("envelope: payload does not open")

// Kind says what Contents carry.
type Kind uint8

const (
	// KindLoop is a loop cover packet the client sent to itself.
	KindLoop Kind = 1
	// KindSession is a session message with a SURB for its
	// acknowledgement.
	KindSession Kind = 2
)

// Contents are what a sealed payload holds.
type Contents struct {
	Kind Kind
	// LoopID identifies a loop packet to the client that sent it.
	LoopID [LoopIDSize]byte
	// Sender is the sender's X25519 identity key: which contact's session
	// the message belongs to (it proves nothing; the session does).
	Sender [KeySize]byte
	// SURB is the single-use reply block for the acknowledgement.
	SURB []byte
	// Initial is the encoded session.Initial that sets the session up, if
	// this message does.
	Initial []byte
	// Header and Ciphertext are the session message.
	Header, Ciphertext []byte
}

// encode appends the contents to b.
func (c *Contents) encode() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(c.Kind))
	switch c.Kind {
	case KindLoop:
		b.AddBytes(c.LoopID[:])
	case KindSession:
		b.AddBytes(c.Sender[:])
		for _, field := range [][]byte{c.SURB, c.Initial, c.Header, c.Ciphertext} {
			if len(field) > 0xffff {
				return nil, fmt.Errorf("envelope: a field of %d bytes", len(field))
			}
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(field) })
		}
	default:
		return nil, fmt.Errorf("envelope: unknown kind %d", c.Kind)
	}
	return b.Bytes()
}

// decodeContents decodes contents followed by zero padding, strictly.
func decodeContents(data []byte) (Contents, error) {
	s := cryptobyte.String(data)
	var c Contents
	var kind uint8
	if !s.ReadUint8(&kind) {
		return c, fmt.Errorf("%w: empty contents", ErrMalformed)
	}
	c.Kind = Kind(kind)
	switch c.Kind {
	case KindLoop:
		if !s.CopyBytes(c.LoopID[:]) {
			return c, fmt.Errorf("%w: truncated loop packet", ErrMalformed)
		}
	case KindSession:
		if !s.CopyBytes(c.Sender[:]) {
			return c, fmt.Errorf("%w: truncated session message", ErrMalformed)
		}
		for _, field := range []*[]byte{&c.SURB, &c.Initial, &c.Header, &c.Ciphertext} {
			var v cryptobyte.String
			if !s.ReadUint16LengthPrefixed(&v) {
				return c, fmt.Errorf("%w: truncated session message", ErrMalformed)
			}
			if len(v) > 0 {
				*field = append([]byte(nil), v...)
			}
		}
	default:
		return c, fmt.Errorf("%w: kind %d", ErrMalformed, kind)
	}
	for _, x := range s {
		if x != 0 {
			return c, fmt.Errorf("%w: padding is not zero", ErrMalformed)
		}
	}
	return c, nil
}

// suite returns the HPKE algorithms.
func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.ChaCha20Poly1305() }

// Seal encodes c, pads it so that the result is exactly size bytes (the
// geometry's user payload length), and seals it to the recipient's X25519
// identity key.
func Seal(recipient [KeySize]byte, c *Contents, size int) ([]byte, error) {
	plain, err := c.encode()
	if err != nil {
		return nil, err
	}
	room := size - Overhead
	if len(plain) > room {
		return nil, fmt.Errorf("envelope: contents of %d bytes do not fit a %d-byte payload (room for %d)", len(plain), size, room)
	}
	padded := make([]byte, room)
	copy(padded, plain)
	pub, err := ecdh.X25519().NewPublicKey(recipient[:])
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient key: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient key: %w", err)
	}
	kdf, aead := suite()
	sealed, err := hpke.Seal(pk, kdf, aead, []byte(hpkeInfo), padded)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return append([]byte{Version}, sealed...), nil
}

// Open opens a sealed payload with the recipient's identity key and decodes
// its contents.
func Open(key *ecdh.PrivateKey, payload []byte) (Contents, error) {
	if len(payload) < Overhead {
		return Contents{}, fmt.Errorf("%w: payload of %d bytes, at least %d", ErrMalformed, len(payload), Overhead)
	}
	if payload[0] != Version {
		return Contents{}, fmt.Errorf("%w: version %d, this program reads version %d", ErrMalformed, payload[0], Version)
	}
	sk, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return Contents{}, fmt.Errorf("envelope: %w", err)
	}
	kdf, aead := suite()
	plain, err := hpke.Open(sk, kdf, aead, []byte(hpkeInfo), payload[1:])
	if err != nil {
		return Contents{}, ErrOpen
	}
	return decodeContents(plain)
}

// Room is how many bytes of contents a payload of the given size holds.
func Room(size int) int { return size - Overhead }

// SessionRoom is how many bytes of session message (header and ciphertext
// together) fit a payload of the given size next to a SURB of surbLength
// bytes and an Initial of initialLength bytes (0 for none).
func SessionRoom(size, surbLength, initialLength int) int {
	return Room(size) - 1 - KeySize - 4*2 - surbLength - initialLength
}
