// Package identity is a backchannel user's long-term identity and the
// contact card that lets others reach them and set up a session: the keys
// PQXDH needs (an X25519 identity key, a signed X25519 prekey and a signed
// ML-KEM-768 prekey), the Ed25519 key that signs the prekeys, and where the
// user's mailbox is.
//
// Deviation from Signal's PQXDH (named in the sessions issue): prekeys are
// signed with a separate Ed25519 key instead of the X25519 identity key
// through XEdDSA, because Go's standard library and x/crypto offer Ed25519
// but not XEdDSA. Both identity keys go into the safety number, so replacing
// either shows when two users compare it.
//
// A [Card] is encoded in a versioned binary form ([Card.MarshalBinary]) and
// as copyable text ([Card.MarshalText]); [ParseCard] refuses a card whose
// signatures do not verify. Prekeys rotate ([Identity.RotatePrekeys]) and
// retired ones are erased after a grace period. Sessions and state at rest
// are not here.
package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"fmt"
	"io"
	"time"
)

// Identity is a user's secret keys and mailbox address.
type Identity struct {
	// DH is the X25519 identity key (PQXDH's IK).
	DH *ecdh.PrivateKey
	// Signing is the Ed25519 key that signs prekeys and cards.
	Signing ed25519.PrivateKey
	// Prekey is the current signed X25519 prekey (PQXDH's SPK).
	Prekey SignedPrekey
	// PQPrekey is the current signed ML-KEM-768 prekey (PQXDH's PQSPK,
	// last-resort: there are no one-time prekeys).
	PQPrekey SignedPQPrekey
	// Provider is the identity key (Sphinx node ID) of the user's provider.
	Provider [32]byte
	// Mailbox is the user's mailbox at the provider.
	Mailbox [32]byte
	// Retired are earlier prekeys still accepted during their grace period.
	Retired []Retired
}

// SignedPrekey is an X25519 prekey with its identifier and creation time.
type SignedPrekey struct {
	ID      uint32
	Created time.Time
	Key     *ecdh.PrivateKey
}

// SignedPQPrekey is an ML-KEM-768 prekey with its identifier and creation
// time.
type SignedPQPrekey struct {
	ID      uint32
	Created time.Time
	Key     *mlkem.DecapsulationKey768
}

// Generate makes a new identity with fresh prekeys (IDs 1), for the given
// mailbox. Every key is derived from bytes read from rand (crypto/rand in
// use, a seeded reader in tests): 32 for each X25519 key and the Ed25519
// seed, 64 for the ML-KEM seed.
func Generate(rand io.Reader, provider, mailbox [32]byte, now time.Time) (*Identity, error) {
	var seeds [32 + 32 + 32 + mlkem.SeedSize]byte
	defer clear(seeds[:])
	if _, err := io.ReadFull(rand, seeds[:]); err != nil {
		return nil, fmt.Errorf("identity: failed to read randomness: %w", err)
	}
	dh, err := ecdh.X25519().NewPrivateKey(seeds[0:32])
	if err != nil {
		return nil, fmt.Errorf("identity: identity key: %w", err)
	}
	signing := ed25519.NewKeyFromSeed(seeds[32:64])
	prekey, err := ecdh.X25519().NewPrivateKey(seeds[64:96])
	if err != nil {
		return nil, fmt.Errorf("identity: prekey: %w", err)
	}
	pq, err := mlkem.NewDecapsulationKey768(seeds[96:])
	if err != nil {
		return nil, fmt.Errorf("identity: ML-KEM prekey: %w", err)
	}
	created := now.UTC().Truncate(time.Second)
	return &Identity{
		DH:       dh,
		Signing:  signing,
		Prekey:   SignedPrekey{ID: 1, Created: created, Key: prekey},
		PQPrekey: SignedPQPrekey{ID: 1, Created: created, Key: pq},
		Provider: provider,
		Mailbox:  mailbox,
	}, nil
}

// Card returns the identity's contact card, signed, of CardVersion.
func (id *Identity) Card() *Card { return id.CardOfVersion(CardVersion) }

// CardOfVersion returns the identity's contact card of the given version,
// signed: CardVersionClassical for a contact on the previous release, which
// reads no other, and which then writes to this identity in the classical
// envelope only.
func (id *Identity) CardOfVersion(version uint8) *Card {
	c := &Card{
		Version:    version,
		SigningKey: id.Signing.Public().(ed25519.PublicKey),
		Prekey:     PublicPrekey{ID: id.Prekey.ID, Created: id.Prekey.Created},
		PQPrekey:   PublicPQPrekey{ID: id.PQPrekey.ID, Created: id.PQPrekey.Created},
		Provider:   id.Provider,
		Mailbox:    id.Mailbox,
	}
	copy(c.DHKey[:], id.DH.PublicKey().Bytes())
	copy(c.Prekey.Key[:], id.Prekey.Key.PublicKey().Bytes())
	copy(c.PQPrekey.Key[:], id.PQPrekey.Key.EncapsulationKey().Bytes())
	c.Prekey.Signature = ed25519.Sign(id.Signing, c.Prekey.signed())
	c.PQPrekey.Signature = ed25519.Sign(id.Signing, c.PQPrekey.signed())
	c.Signature = ed25519.Sign(id.Signing, c.signed())
	return c
}

// PrekeyPair is a pair of prekeys: what the sealed envelope is sealed to.
type PrekeyPair struct {
	PQ     *mlkem.DecapsulationKey768
	X25519 *ecdh.PrivateKey
}

// PrekeyPairs returns the current prekeys and then those retired and not
// yet erased: what payloads sealed from this identity's cards open with.
func (id *Identity) PrekeyPairs() []PrekeyPair {
	pairs := []PrekeyPair{{PQ: id.PQPrekey.Key, X25519: id.Prekey.Key}}
	for _, r := range id.Retired {
		pairs = append(pairs, PrekeyPair{PQ: r.PQPrekey.Key, X25519: r.Prekey.Key})
	}
	return pairs
}
