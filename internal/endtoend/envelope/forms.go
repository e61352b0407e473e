package envelope

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/mlkem"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Lengths of the three forms' encryption.
const (
	sealedEncLength    = mlkem.CiphertextSize768 + 32 // X-Wing: ML-KEM ciphertext, X25519 ephemeral key
	classicalEncLength = 32
	// SealedOverhead, ClassicalOverhead and KeyedOverhead are what each
	// form adds to its Contents.
	SealedOverhead    = 1 + sealedEncLength + tagLength
	ClassicalOverhead = 1 + classicalEncLength + tagLength
	KeyedOverhead     = 1 + chacha20poly1305.NonceSizeX + tagLength
)

// HPKE info strings and the keyed form's associated data bind each form to
// this use and version.
const (
	sealedInfo    = "backchannel envelope v2 sealed"
	classicalInfo = "backchannel envelope v1"
	keyedAD       = "backchannel envelope v2 keyed"
)

// topBit is the bit of the X25519 ephemeral key's last byte that every
// encoding leaves 0, and the sealed form sets at random.
const topBit = 0x80

// Prekeys are what the sealed form seals to: a contact's signed ML-KEM-768
// and X25519 prekeys, from its card.
type Prekeys struct {
	PQ     *mlkem.EncapsulationKey768
	X25519 *ecdh.PublicKey
}

// PrekeyOpener makes the private key that opens payloads sealed to the
// prekey pair (pq, x).
func PrekeyOpener(pq *mlkem.DecapsulationKey768, x *ecdh.PrivateKey) (hpke.PrivateKey, error) {
	k, err := hpke.NewHybridPrivateKey(pq, x)
	if err != nil {
		return nil, fmt.Errorf("envelope: prekeys: %w", err)
	}
	return k, nil
}

// suite returns the HPKE KDF and AEAD of both HPKE forms.
func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.ChaCha20Poly1305() }

// Seal encodes c, pads it so that the result is exactly size bytes (the
// geometry's user payload length), and seals it to the prekeys in the
// sealed form. rand gives the ephemeral key's top bit (crypto/hpke draws
// the rest of its randomness itself).
func Seal(rand io.Reader, to Prekeys, c *Contents, size int) ([]byte, error) {
	padded, err := pad(c, true, size-SealedOverhead, size)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewHybridPublicKey(to.PQ, to.X25519)
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient's prekeys: %w", err)
	}
	kdf, aead := suite()
	sealed, err := hpke.Seal(pk, kdf, aead, []byte(sealedInfo), padded)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	var bit [1]byte
	if _, err := io.ReadFull(rand, bit[:]); err != nil {
		return nil, fmt.Errorf("envelope: failed to read randomness: %w", err)
	}
	sealed[sealedEncLength-1] |= bit[0] & topBit
	return append([]byte{Version}, sealed...), nil
}

// SealClassical seals c to the recipient's X25519 identity key in the
// classical form (version 1), for software that opens nothing else.
func SealClassical(recipient [KeySize]byte, c *Contents, size int) ([]byte, error) {
	padded, err := pad(c, true, size-ClassicalOverhead, size)
	if err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(recipient[:])
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient key: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("envelope: recipient key: %w", err)
	}
	kdf, aead := suite()
	sealed, err := hpke.Seal(pk, kdf, aead, []byte(classicalInfo), padded)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return append([]byte{VersionClassical}, sealed...), nil
}

// SealKeyed encrypts c under key in the keyed form, with a random nonce
// from rand. c.Sender is not carried: the key says who sent it.
func SealKeyed(rand io.Reader, key *[KeySize]byte, c *Contents, size int) ([]byte, error) {
	padded, err := pad(c, false, size-KeyedOverhead, size)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, size)
	out[0] = Version
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("envelope: failed to read randomness: %w", err)
	}
	return aead.Seal(out, out[1:], padded, []byte(keyedAD)), nil
}

// Keys are what a recipient opens payloads with.
type Keys struct {
	// Keyed are the keyed form's keys, tried in order: one per contact's
	// session, and the loop key.
	Keyed []*[KeySize]byte
	// Prekeys open the sealed form: the current prekeys first, then those
	// retired and not yet erased (see PrekeyOpener).
	Prekeys []hpke.PrivateKey
	// Identity opens the classical form.
	Identity *ecdh.PrivateKey
}

// Opened is an opened payload.
type Opened struct {
	Contents
	// Keyed is the index in Keys.Keyed of the key that opened it, or -1
	// for the sealed and classical forms (whose Contents name the sender).
	Keyed int
}

// Open opens a payload of any form and decodes its contents. Keyed keys
// are tried first: they are cheap (an AEAD tag each) and open most
// payloads.
func Open(keys *Keys, payload []byte) (Opened, error) {
	if len(payload) < KeyedOverhead {
		return Opened{}, fmt.Errorf("%w: payload of %d bytes, at least %d", ErrMalformed, len(payload), KeyedOverhead)
	}
	switch payload[0] {
	case VersionClassical:
		c, err := openClassical(keys.Identity, payload)
		return Opened{Contents: c, Keyed: -1}, err
	case Version:
	default:
		return Opened{}, fmt.Errorf("%w: version %d, this program reads versions %d and %d", ErrMalformed, payload[0], VersionClassical, Version)
	}
	nonce, ciphertext := payload[1:1+chacha20poly1305.NonceSizeX], payload[1+chacha20poly1305.NonceSizeX:]
	for i, key := range keys.Keyed {
		aead, err := chacha20poly1305.NewX(key[:])
		if err != nil {
			return Opened{}, fmt.Errorf("envelope: %w", err)
		}
		plain, err := aead.Open(nil, nonce, ciphertext, []byte(keyedAD))
		if err != nil {
			continue
		}
		c, err := decodeContents(plain, false)
		return Opened{Contents: c, Keyed: i}, err
	}
	if len(payload) < SealedOverhead {
		return Opened{}, ErrOpen
	}
	enc := make([]byte, len(payload)-1)
	copy(enc, payload[1:])
	enc[sealedEncLength-1] &^= topBit
	kdf, aead := suite()
	for _, k := range keys.Prekeys {
		plain, err := hpke.Open(k, kdf, aead, []byte(sealedInfo), enc)
		if err != nil {
			continue
		}
		c, err := decodeContents(plain, true)
		return Opened{Contents: c, Keyed: -1}, err
	}
	return Opened{}, ErrOpen
}

func openClassical(key *ecdh.PrivateKey, payload []byte) (Contents, error) {
	if key == nil {
		return Contents{}, ErrOpen
	}
	if len(payload) < ClassicalOverhead {
		return Contents{}, fmt.Errorf("%w: payload of %d bytes, at least %d", ErrMalformed, len(payload), ClassicalOverhead)
	}
	sk, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return Contents{}, fmt.Errorf("envelope: %w", err)
	}
	kdf, aead := suite()
	plain, err := hpke.Open(sk, kdf, aead, []byte(classicalInfo), payload[1:])
	if err != nil {
		return Contents{}, ErrOpen
	}
	return decodeContents(plain, true)
}
