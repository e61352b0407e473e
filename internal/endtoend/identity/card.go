package identity

import (
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha512"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Card is a user's public contact card.
type Card struct {
	// Version is the card's format version, which also says what its
	// owner's software opens: version 2 (CardVersion) the sealed and keyed
	// envelopes of envelope version 2, version 1 only the classical one.
	// The layout is the same.
	Version uint8
	// DHKey is the X25519 identity key.
	DHKey [32]byte
	// SigningKey is the Ed25519 key that signed the prekeys and the card.
	SigningKey ed25519.PublicKey
	Prekey     PublicPrekey
	PQPrekey   PublicPQPrekey
	// Provider is the provider's node ID; Mailbox the user's mailbox there.
	Provider [32]byte
	Mailbox  [32]byte
	// Signature is the signing key's signature over all of the above.
	Signature []byte
}

// PublicPrekey is a signed X25519 prekey as a card carries it.
type PublicPrekey struct {
	ID        uint32
	Created   time.Time
	Key       [32]byte
	Signature []byte
}

// PublicPQPrekey is a signed ML-KEM-768 prekey as a card carries it.
type PublicPQPrekey struct {
	ID        uint32
	Created   time.Time
	Key       [mlkem.EncapsulationKeySize768]byte
	Signature []byte
}

// Domain-separation labels of the signatures, versioned.
const (
	prekeyContext   = "backchannel signed prekey v1\x00"
	pqPrekeyContext = "backchannel signed ML-KEM-768 prekey v1\x00"
	cardContext     = "backchannel contact card v1\x00"
)

func (p *PublicPrekey) signed() []byte {
	b := append([]byte(prekeyContext), binary.BigEndian.AppendUint32(nil, p.ID)...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Created.Unix()))
	return append(b, p.Key[:]...)
}

func (p *PublicPQPrekey) signed() []byte {
	b := append([]byte(pqPrekeyContext), binary.BigEndian.AppendUint32(nil, p.ID)...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Created.Unix()))
	return append(b, p.Key[:]...)
}

func (c *Card) signed() []byte {
	return append([]byte(cardContext), c.body()...)
}

// Card encoding, versions 1 and 2 (big-endian; the same layout):
//
//	"bccard" | u8 version | DH key [32] | signing key [32]
//	| u32 prekey ID | u64 created | prekey [32] | signature [64]
//	| u32 PQ prekey ID | u64 created | PQ prekey [1184] | signature [64]
//	| provider [32] | mailbox [32] | card signature [64]
const (
	cardMagic = "bccard"
	// CardVersion is the version of the cards this release makes;
	// CardVersionClassical is the previous release's, which it still
	// reads and can still make (Identity.CardOfVersion) for a contact
	// whose software reads no other.
	CardVersion          = 2
	CardVersionClassical = 1
	// CardSize is the length of an encoded card.
	CardSize = len(cardMagic) + 1 + 32 + 32 + (4 + 8 + 32 + 64) + (4 + 8 + mlkem.EncapsulationKeySize768 + 64) + 32 + 32 + 64
)

// ErrCard is wrapped by every error about a card that cannot be used.
var ErrCard = errors.New("identity: bad contact card")

// ErrIdentity is wrapped by every error decoding a stored identity.
var ErrIdentity = errors.New("identity: unreadable identity")

// body is the encoding without the card signature.
func (c *Card) body() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(cardMagic))
	b.AddUint8(c.Version)
	b.AddBytes(c.DHKey[:])
	b.AddBytes(c.SigningKey)
	b.AddUint32(c.Prekey.ID)
	b.AddUint64(uint64(c.Prekey.Created.Unix()))
	b.AddBytes(c.Prekey.Key[:])
	b.AddBytes(c.Prekey.Signature)
	b.AddUint32(c.PQPrekey.ID)
	b.AddUint64(uint64(c.PQPrekey.Created.Unix()))
	b.AddBytes(c.PQPrekey.Key[:])
	b.AddBytes(c.PQPrekey.Signature)
	b.AddBytes(c.Provider[:])
	b.AddBytes(c.Mailbox[:])
	return b.BytesOrPanic()
}

// OpensSealed reports whether the card's owner opens envelope version 2
// (sealed and keyed payloads): a card of version 2.
func (c *Card) OpensSealed() bool { return c.Version >= CardVersion }

// MarshalBinary encodes the card.
func (c *Card) MarshalBinary() ([]byte, error) {
	if len(c.SigningKey) != ed25519.PublicKeySize || len(c.Prekey.Signature) != ed25519.SignatureSize ||
		len(c.PQPrekey.Signature) != ed25519.SignatureSize || len(c.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: missing key or signature", ErrCard)
	}
	return append(c.body(), c.Signature...), nil
}

// ParseCard decodes a card strictly and verifies its signatures.
func ParseCard(data []byte) (*Card, error) {
	if len(data) != CardSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrCard, len(data), CardSize)
	}
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	if !s.ReadBytes(&magic, len(cardMagic)) || string(magic) != cardMagic {
		return nil, fmt.Errorf("%w: not a contact card", ErrCard)
	}
	if !s.ReadUint8(&version) || version != CardVersion && version != CardVersionClassical {
		return nil, fmt.Errorf("%w: card version %d, this program reads versions %d and %d", ErrCard, version, CardVersionClassical, CardVersion)
	}
	c := &Card{Version: version}
	var signing, prekey, prekeySig, pq, pqSig, provider, mailbox, sig []byte
	var prekeyCreated, pqCreated uint64
	ok := s.CopyBytes(c.DHKey[:]) &&
		s.ReadBytes(&signing, ed25519.PublicKeySize) &&
		s.ReadUint32(&c.Prekey.ID) && s.ReadUint64(&prekeyCreated) && s.ReadBytes(&prekey, 32) && s.ReadBytes(&prekeySig, ed25519.SignatureSize) &&
		s.ReadUint32(&c.PQPrekey.ID) && s.ReadUint64(&pqCreated) && s.ReadBytes(&pq, mlkem.EncapsulationKeySize768) && s.ReadBytes(&pqSig, ed25519.SignatureSize) &&
		s.ReadBytes(&provider, 32) && s.ReadBytes(&mailbox, 32) && s.ReadBytes(&sig, ed25519.SignatureSize) && s.Empty()
	if !ok {
		return nil, fmt.Errorf("%w: truncated", ErrCard)
	}
	if prekeyCreated > 1<<62 || pqCreated > 1<<62 {
		return nil, fmt.Errorf("%w: prekey creation time out of range", ErrCard)
	}
	c.SigningKey = append(ed25519.PublicKey(nil), signing...)
	c.Prekey.Created = time.Unix(int64(prekeyCreated), 0).UTC()
	copy(c.Prekey.Key[:], prekey)
	c.Prekey.Signature = append([]byte(nil), prekeySig...)
	c.PQPrekey.Created = time.Unix(int64(pqCreated), 0).UTC()
	copy(c.PQPrekey.Key[:], pq)
	c.PQPrekey.Signature = append([]byte(nil), pqSig...)
	copy(c.Provider[:], provider)
	copy(c.Mailbox[:], mailbox)
	c.Signature = append([]byte(nil), sig...)
	if err := c.Verify(); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks the card's signatures and that its ML-KEM key is well
// formed.
func (c *Card) Verify() error {
	switch {
	case !ed25519.Verify(c.SigningKey, c.Prekey.signed(), c.Prekey.Signature):
		return fmt.Errorf("%w: the X25519 prekey's signature does not verify", ErrCard)
	case !ed25519.Verify(c.SigningKey, c.PQPrekey.signed(), c.PQPrekey.Signature):
		return fmt.Errorf("%w: the ML-KEM prekey's signature does not verify", ErrCard)
	case !ed25519.Verify(c.SigningKey, c.signed(), c.Signature):
		return fmt.Errorf("%w: the card's signature does not verify", ErrCard)
	}
	if _, err := mlkem.NewEncapsulationKey768(c.PQPrekey.Key[:]); err != nil {
		return fmt.Errorf("%w: malformed ML-KEM prekey: %v", ErrCard, err)
	}
	return nil
}

// pemType is the type of the PEM block of a card's text form.
const pemType = "BACKCHANNEL CONTACT CARD"

// MarshalText encodes the card as copyable text (a PEM block).
func (c *Card) MarshalText() ([]byte, error) {
	b, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: b}), nil
}

// ParseCardText decodes a card from its text form, ignoring text around the
// block (as when it is pasted from a message).
func ParseCardText(text []byte) (*Card, error) {
	block, _ := pem.Decode(text)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("%w: no %q block in the text", ErrCard, pemType)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: unexpected headers in the card's text", ErrCard)
	}
	return ParseCard(block.Bytes)
}

// SafetyNumber is the number two users compare out of band to check that
// each holds the other's real card: 60 digits in 12 groups of 5, the same on
// both sides.
//
// It follows Signal's numeric fingerprint (see numericFingerprint; the
// two halves ordered so both sides see the same number), with each party's
// "identity key" being its X25519 and Ed25519 identity keys together and an
// empty stable identifier (backchannel has no global user names).
func SafetyNumber(a, b *Card) string {
	fa, fb := fingerprint(a), fingerprint(b)
	if fb < fa {
		fa, fb = fb, fa
	}
	digits := fa + fb
	groups := make([]string, 0, 12)
	for i := 0; i < len(digits); i += 5 {
		groups = append(groups, digits[i:i+5])
	}
	return strings.Join(groups, " ")
}

// fingerprintIterations is Signal's iteration count for numeric
// fingerprints.
const fingerprintIterations = 5200

func fingerprint(c *Card) string {
	key := append(append([]byte(nil), c.DHKey[:]...), c.SigningKey...)
	return numericFingerprint(key, nil)
}

// numericFingerprint is Signal's NumericFingerprintGenerator for one party:
// hash = version ‖ key ‖ stable identifier, then 5,200 times
// hash = SHA-512(hash ‖ key); the first 30 bytes, as six 5-byte big-endian
// numbers mod 100,000, give 30 digits.
func numericFingerprint(key, stableID []byte) string {
	hash := append([]byte{0, 0}, key...)
	hash = append(hash, stableID...)
	h := sha512.New()
	for range fingerprintIterations {
		h.Reset()
		h.Write(hash)
		h.Write(key)
		hash = h.Sum(hash[:0])
	}
	var out strings.Builder
	for i := 0; i < 30; i += 5 {
		chunk := uint64(hash[i])<<32 | uint64(hash[i+1])<<24 | uint64(hash[i+2])<<16 | uint64(hash[i+3])<<8 | uint64(hash[i+4])
		fmt.Fprintf(&out, "%05d", chunk%100000)
	}
	return out.String()
}
