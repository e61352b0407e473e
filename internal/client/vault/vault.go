// Package vault keeps a client's state encrypted at rest. Everything is
// encrypted under one random state key. A state directory (Dir) keeps the
// state key wrapped once per officer in a [Keyring] header: each officer's
// passphrase (Argon2id, RFC 9106) opens their slot alone, so a passphrase
// change rewrites one slot, removing an officer moves the state to a new
// key that only the others' slots give, and destroying the header (a wipe)
// makes every sealed entry unreadable at once.
//
// A [Header] is the single-passphrase form: the previous release's state
// header, which opens and becomes a keyring of one slot, and the header of
// a backup file. [Vault.Seal] and [Vault.Open] encrypt and decrypt entries
// (identity, contacts, ratchet states), each bound to a label so one
// cannot be passed off as another. Every encoding carries a version.
//
// It does not know officers' names or roles (the client keeps those in the
// sealed state, by slot ID), nor what the entries hold.
package vault

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// Params are Argon2id's cost parameters.
type Params struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultParams returns RFC 9106's second recommended option (§4): t = 3,
// m = 64 MiB, p = 4, for memory-constrained settings such as phones.
func DefaultParams() Params { return Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 4} }

// Errors.
var (
	// ErrPassphrase: the passphrase does not unwrap the state key.
	ErrPassphrase = errors.New("vault: wrong passphrase")
	// ErrCorrupt: a header or entry is damaged, truncated, of an unknown
	// version, or sealed under another label or key.
	ErrCorrupt = errors.New("vault: corrupted or unreadable data")
)

const (
	headerMagic  = "bcvault"
	entryMagic   = "bcentry"
	formatV1     = 1
	saltSize     = 16
	keySize      = 32
	wrappedSize  = chacha20poly1305.NonceSizeX + keySize + chacha20poly1305.Overhead
	wrapContext  = "backchannel vault state key v1"
	minMemoryKiB = 8
)

// Header is the stored, passphrase-protected part of a vault:
//
//	"bcvault" | u8 version | u32 time | u32 memory KiB | u8 threads | salt [16] | wrapped key [72]
type Header struct {
	Params  Params
	Salt    [saltSize]byte
	Wrapped [wrappedSize]byte
}

// Vault is an unlocked vault: it holds the state key.
//
// It is safe for concurrent use: the client's reads open entries while its
// schedule seals others.
type Vault struct {
	mu    sync.RWMutex // guards key, old and wiped; held to write for Seal (rand may not be safe for concurrent use)
	key   [keySize]byte
	old   *[keySize]byte // during a re-key: the key being replaced, which Open still tries
	rand  io.Reader
	wiped bool
}

// ErrWiped: the vault's key was wiped; nothing more is sealed or opened.
var ErrWiped = errors.New("vault: the state was wiped")

// Create makes a vault with a fresh state key, wrapped under passphrase.
func Create(rand io.Reader, passphrase []byte, params Params) (*Vault, *Header, error) {
	v := &Vault{rand: rand}
	if _, err := io.ReadFull(rand, v.key[:]); err != nil {
		return nil, nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	h, err := v.wrap(passphrase, params)
	if err != nil {
		return nil, nil, err
	}
	return v, h, nil
}

// Unlock unwraps the state key with passphrase.
func Unlock(rand io.Reader, h *Header, passphrase []byte) (*Vault, error) {
	kek := deriveKEK(passphrase, h)
	defer clear(kek[:])
	aead, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		return nil, err
	}
	nonce := h.Wrapped[:chacha20poly1305.NonceSizeX]
	key, err := aead.Open(nil, nonce, h.Wrapped[chacha20poly1305.NonceSizeX:], h.associatedData())
	if err != nil {
		return nil, ErrPassphrase
	}
	v := &Vault{rand: rand}
	copy(v.key[:], key)
	clear(key)
	return v, nil
}

// wrap makes a version 1 header that wraps the state key under passphrase
// (a backup file's).
func (v *Vault) wrap(passphrase []byte, params Params) (*Header, error) {
	if err := checkParams(params); err != nil {
		return nil, err
	}
	h := &Header{Params: params}
	if _, err := io.ReadFull(v.rand, h.Salt[:]); err != nil {
		return nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	nonce := h.Wrapped[:chacha20poly1305.NonceSizeX]
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	kek := deriveKEK(passphrase, h)
	defer clear(kek[:])
	aead, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		return nil, err
	}
	aead.Seal(h.Wrapped[:chacha20poly1305.NonceSizeX], nonce, v.key[:], h.associatedData())
	return h, nil
}

// associatedData binds the wrapped key to the header's version, parameters
// and salt.
func (h *Header) associatedData() []byte {
	b, _ := h.marshalPrefix()
	return append([]byte(wrapContext), b...)
}

func deriveKEK(passphrase []byte, h *Header) [keySize]byte {
	return deriveKEKFrom(passphrase, h.Salt[:], h.Params)
}

// deriveKEKFrom derives a key-encryption key from a passphrase with
// Argon2id.
func deriveKEKFrom(passphrase, salt []byte, p Params) [keySize]byte {
	var kek [keySize]byte
	k := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, keySize)
	copy(kek[:], k)
	clear(k)
	return kek
}

func (h *Header) marshalPrefix() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(headerMagic))
	b.AddUint8(formatV1)
	b.AddUint32(h.Params.Time)
	b.AddUint32(h.Params.MemoryKiB)
	b.AddUint8(h.Params.Threads)
	b.AddBytes(h.Salt[:])
	return b.Bytes()
}

// MarshalBinary encodes the header.
func (h *Header) MarshalBinary() ([]byte, error) {
	b, err := h.marshalPrefix()
	if err != nil {
		return nil, err
	}
	return append(b, h.Wrapped[:]...), nil
}

// HeaderSize is the length of an encoded header.
const HeaderSize = len(headerMagic) + 1 + 4 + 4 + 1 + saltSize + wrappedSize

// ParseHeader decodes a header strictly. Parameters too costly to be
// genuine (over 4 GiB or 64 passes) are refused, so a damaged or hostile
// file cannot make unlocking take forever.
func ParseHeader(data []byte) (*Header, error) {
	if len(data) != HeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes, want %d", ErrCorrupt, len(data), HeaderSize)
	}
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	h := &Header{}
	if !s.ReadBytes(&magic, len(headerMagic)) || string(magic) != headerMagic {
		return nil, fmt.Errorf("%w: not a vault header", ErrCorrupt)
	}
	if !s.ReadUint8(&version) || version != formatV1 {
		return nil, fmt.Errorf("%w: vault version %d, this program reads version %d", ErrCorrupt, version, formatV1)
	}
	if !s.ReadUint32(&h.Params.Time) || !s.ReadUint32(&h.Params.MemoryKiB) || !s.ReadUint8(&h.Params.Threads) ||
		!s.CopyBytes(h.Salt[:]) || !s.CopyBytes(h.Wrapped[:]) || !s.Empty() {
		return nil, fmt.Errorf("%w: truncated header", ErrCorrupt)
	}
	if err := checkStoredParams(h.Params); err != nil {
		return nil, err
	}
	return h, nil
}

// Seal encrypts an entry under the state key, bound to label:
//
//	"bcentry" | u8 version | nonce [24] | ciphertext
func (v *Vault) Seal(label string, plaintext []byte) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.wiped {
		return nil, ErrWiped
	}
	aead, err := chacha20poly1305.NewX(v.key[:])
	if err != nil {
		return nil, err
	}
	out := append([]byte(entryMagic), formatV1)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, entryAD(label)), nil
}

// Open decrypts an entry sealed under label.
func (v *Vault) Open(label string, entry []byte) ([]byte, error) {
	plain, _, err := v.openReporting(label, entry)
	return plain, err
}

// openReporting opens an entry and says whether the current key opened it
// (false: the old key of a re-key did).
func (v *Vault) openReporting(label string, entry []byte) (plain []byte, current bool, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.wiped {
		return nil, false, ErrWiped
	}
	prefix := len(entryMagic) + 1 + chacha20poly1305.NonceSizeX
	if len(entry) < prefix+chacha20poly1305.Overhead || string(entry[:len(entryMagic)]) != entryMagic {
		return nil, false, fmt.Errorf("%w: not a vault entry", ErrCorrupt)
	}
	if entry[len(entryMagic)] != formatV1 {
		return nil, false, fmt.Errorf("%w: entry version %d, this program reads version %d", ErrCorrupt, entry[len(entryMagic)], formatV1)
	}
	nonce, ciphertext := entry[len(entryMagic)+1:prefix], entry[prefix:]
	plain, err = openEntry(&v.key, label, nonce, ciphertext)
	if err == nil || v.old == nil {
		return plain, err == nil, err
	}
	plain, err = openEntry(v.old, label, nonce, ciphertext)
	return plain, false, err
}

// openEntry decrypts an entry's ciphertext under one key.
func openEntry(key *[keySize]byte, label string, nonce, ciphertext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, nonce, ciphertext, entryAD(label))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %q does not decrypt", ErrCorrupt, label)
	}
	return plaintext, nil
}

func entryAD(label string) []byte { return []byte("backchannel vault entry v1\x00" + label) }

// Wipe erases the state key from memory.
func (v *Vault) Wipe() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.key[:])
	v.endRekeyLocked()
	v.wiped = true
}

// Equal reports whether two unlocked vaults hold the same state key, in
// constant time (for tests and for checking a restored backup).
func (v *Vault) Equal(w *Vault) bool { return subtle.ConstantTimeCompare(v.key[:], w.key[:]) == 1 }
