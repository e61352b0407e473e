package vault

import (
	"crypto/hpke"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// A Keyring is the header of a vault kept by several officers (format
// version 2): one Slot per officer, each of which gives the state key to
// that officer's passphrase alone.
//
// A slot does not wrap the state key under the passphrase directly, as a
// version 1 Header does, but under a key pair of the officer's: the
// passphrase (Argon2id) seals the key pair's 32-byte seed, and the state
// key is sealed to its public key with HPKE (RFC 9180; ML-KEM-768 with
// X25519, HKDF-SHA256, ChaCha20-Poly1305, from crypto/hpke). This is age's
// design of one file key wrapped once per recipient, and it is what makes
// removing an officer real: a new state key can then be wrapped for every
// officer who stays without knowing their passphrases, while the removed
// officer's seed, which they may have copied, opens nothing new.
//
//	"bcvault" | u8 version (2) | u8 slots | slot...
//	slot: id [8] | u32 time | u32 memory KiB | u8 threads | salt [16] |
//	      sealed seed [72] | u16 length | public key | u16 length | wrapped state key
//
// Nothing in a slot names its officer: the names are in the sealed state
// (the client's officers record), found by the slot's ID.
type Keyring struct {
	Slots []Slot
}

// SlotID names a slot: random, so that it says nothing of its officer.
type SlotID [8]byte

// Slot is one officer's way to the state key.
type Slot struct {
	ID         SlotID
	Params     Params
	Salt       [saltSize]byte
	SealedSeed [wrappedSize]byte // the key pair's seed, under the passphrase
	PublicKey  []byte            // the key pair's HPKE public key
	WrappedKey []byte            // the state key, sealed to PublicKey
}

const (
	formatV2    = 2
	maxSlots    = 64
	seedSize    = 32
	seedContext = "backchannel vault officer seed v2"
	slotInfo    = "backchannel vault state key v2"
)

// kem, kdf and aead are a slot's HPKE suite.
var (
	kem  = hpke.MLKEM768X25519()
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// ErrLastSlot: removing the slot would leave nobody able to open the vault.
var ErrLastSlot = errors.New("vault: the last officer cannot be removed")

// ErrNoSlot: no slot has that ID.
var ErrNoSlot = errors.New("vault: no such officer slot")

// newSlot makes a slot that gives the vault's current state key to
// passphrase: a fresh key pair, its seed sealed under the passphrase with
// a fresh salt, the state key sealed to it. v.mu is held.
func (v *Vault) newSlot(id SlotID, passphrase []byte, params Params) (Slot, error) {
	if err := checkParams(params); err != nil {
		return Slot{}, err
	}
	s := Slot{ID: id, Params: params}
	var seed [seedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(v.rand, seed[:]); err != nil {
		return Slot{}, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	if _, err := io.ReadFull(v.rand, s.Salt[:]); err != nil {
		return Slot{}, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	nonce := s.SealedSeed[:chacha20poly1305.NonceSizeX]
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return Slot{}, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	kek := deriveKEKFrom(passphrase, s.Salt[:], params)
	defer clear(kek[:])
	seal, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		return Slot{}, err
	}
	seal.Seal(s.SealedSeed[:chacha20poly1305.NonceSizeX], nonce, seed[:], s.seedAD())
	priv, err := kem.DeriveKeyPair(seed[:])
	if err != nil {
		return Slot{}, fmt.Errorf("vault: deriving an officer's key pair: %w", err)
	}
	s.PublicKey = priv.PublicKey().Bytes()
	if s.WrappedKey, err = wrapFor(s.ID, s.PublicKey, &v.key); err != nil {
		return Slot{}, err
	}
	return s, nil
}

// createKeyring makes a vault with a fresh state key and a keyring of
// one slot, for passphrase.
func createKeyring(rand io.Reader, passphrase []byte, params Params) (*Vault, *Keyring, error) {
	v := &Vault{rand: rand}
	if _, err := io.ReadFull(rand, v.key[:]); err != nil {
		return nil, nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	id, err := newSlotID(rand)
	if err != nil {
		return nil, nil, err
	}
	slot, err := v.newSlot(id, passphrase, params)
	if err != nil {
		return nil, nil, err
	}
	return v, &Keyring{Slots: []Slot{slot}}, nil
}

// wrapFor seals a state key to a slot's public key.
func wrapFor(id SlotID, publicKey []byte, key *[keySize]byte) ([]byte, error) {
	pub, err := kem.NewPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: officer slot %x has a bad public key", ErrCorrupt, id)
	}
	wrapped, err := hpke.Seal(pub, kdf, aead, slotInfoFor(id), key[:])
	if err != nil {
		return nil, fmt.Errorf("vault: wrapping the state key for slot %x: %w", id, err)
	}
	return wrapped, nil
}

func slotInfoFor(id SlotID) []byte { return append([]byte(slotInfo), id[:]...) }

// seedAD binds a sealed seed to its slot's ID, parameters and salt.
func (s *Slot) seedAD() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(seedContext))
	b.AddBytes(s.ID[:])
	b.AddUint32(s.Params.Time)
	b.AddUint32(s.Params.MemoryKiB)
	b.AddUint8(s.Params.Threads)
	b.AddBytes(s.Salt[:])
	return b.BytesOrPanic()
}

// open tries passphrase on the slot: ErrPassphrase if it is not this
// slot's, else the state key.
func (s *Slot) open(passphrase []byte) (key [keySize]byte, err error) {
	kek := deriveKEKFrom(passphrase, s.Salt[:], s.Params)
	defer clear(kek[:])
	return s.openWith(&kek)
}

func (s *Slot) openWith(kek *[keySize]byte) (key [keySize]byte, err error) {
	c, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		return key, err
	}
	seed, err := c.Open(nil, s.SealedSeed[:chacha20poly1305.NonceSizeX], s.SealedSeed[chacha20poly1305.NonceSizeX:], s.seedAD())
	if err != nil {
		return key, ErrPassphrase
	}
	defer clear(seed)
	priv, err := kem.DeriveKeyPair(seed)
	if err != nil {
		return key, fmt.Errorf("vault: deriving an officer's key pair: %w", err)
	}
	plain, err := hpke.Open(priv, kdf, aead, slotInfoFor(s.ID), s.WrappedKey)
	if err != nil || len(plain) != keySize {
		return key, fmt.Errorf("%w: officer slot %x does not give a state key", ErrCorrupt, s.ID)
	}
	copy(key[:], plain)
	clear(plain)
	return key, nil
}

// UnlockKeyring finds the slot that passphrase opens (trying each: an
// Argon2id derivation per slot) and unlocks the vault with it.
func UnlockKeyring(rand io.Reader, k *Keyring, passphrase []byte) (*Vault, SlotID, error) {
	for i := range k.Slots {
		key, err := k.Slots[i].open(passphrase)
		if errors.Is(err, ErrPassphrase) {
			continue
		}
		if err != nil {
			return nil, SlotID{}, err
		}
		v := &Vault{rand: rand, key: key}
		clear(key[:])
		return v, k.Slots[i].ID, nil
	}
	return nil, SlotID{}, ErrPassphrase
}

// slot returns the slot of that ID, or nil.
func (k *Keyring) slot(id SlotID) *Slot {
	for i := range k.Slots {
		if k.Slots[i].ID == id {
			return &k.Slots[i]
		}
	}
	return nil
}

// MarshalBinary encodes the keyring.
func (k *Keyring) MarshalBinary() ([]byte, error) {
	if len(k.Slots) == 0 || len(k.Slots) > maxSlots {
		return nil, fmt.Errorf("vault: a keyring of %d slots, want 1 to %d", len(k.Slots), maxSlots)
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(headerMagic))
	b.AddUint8(formatV2)
	b.AddUint8(uint8(len(k.Slots)))
	for _, s := range k.Slots {
		b.AddBytes(s.ID[:])
		b.AddUint32(s.Params.Time)
		b.AddUint32(s.Params.MemoryKiB)
		b.AddUint8(s.Params.Threads)
		b.AddBytes(s.Salt[:])
		b.AddBytes(s.SealedSeed[:])
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.PublicKey) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.WrappedKey) })
	}
	return b.Bytes()
}

// ParseKeyring decodes a version 2 header strictly: every failure is
// ErrCorrupt, and parameters too costly to be genuine are refused.
func ParseKeyring(data []byte) (*Keyring, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var version, n uint8
	if !s.ReadBytes(&magic, len(headerMagic)) || string(magic) != headerMagic {
		return nil, fmt.Errorf("%w: not a vault header", ErrCorrupt)
	}
	if !s.ReadUint8(&version) || version != formatV2 {
		return nil, fmt.Errorf("%w: vault version %d, want %d", ErrCorrupt, version, formatV2)
	}
	if !s.ReadUint8(&n) || n == 0 || n > maxSlots {
		return nil, fmt.Errorf("%w: a keyring of %d slots", ErrCorrupt, n)
	}
	k := &Keyring{Slots: make([]Slot, n)}
	for i := range k.Slots {
		sl := &k.Slots[i]
		var pub, wrapped cryptobyte.String
		if !s.CopyBytes(sl.ID[:]) || !s.ReadUint32(&sl.Params.Time) || !s.ReadUint32(&sl.Params.MemoryKiB) ||
			!s.ReadUint8(&sl.Params.Threads) || !s.CopyBytes(sl.Salt[:]) || !s.CopyBytes(sl.SealedSeed[:]) ||
			!s.ReadUint16LengthPrefixed(&pub) || !s.ReadUint16LengthPrefixed(&wrapped) {
			return nil, fmt.Errorf("%w: truncated officer slot %d", ErrCorrupt, i)
		}
		if err := checkStoredParams(sl.Params); err != nil {
			return nil, err
		}
		if k.slot(sl.ID) != sl {
			return nil, fmt.Errorf("%w: two officer slots of ID %x", ErrCorrupt, sl.ID)
		}
		sl.PublicKey, sl.WrappedKey = []byte(pub), []byte(wrapped)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes after the keyring", ErrCorrupt)
	}
	return k, nil
}

// checkParams refuses Argon2id parameters too weak to use.
func checkParams(p Params) error {
	if p.Time < 1 || p.MemoryKiB < minMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("vault: Argon2id parameters %+v out of range", p)
	}
	return nil
}

// checkStoredParams also refuses parameters too costly to be genuine (over
// 4 GiB or 64 passes), so a damaged or hostile file cannot make unlocking
// take forever.
func checkStoredParams(p Params) error {
	if p.Time < 1 || p.Time > 64 || p.MemoryKiB < minMemoryKiB || p.MemoryKiB > 4<<20 || p.Threads < 1 {
		return fmt.Errorf("%w: Argon2id parameters %+v out of range", ErrCorrupt, p)
	}
	return nil
}
