package directory

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// Descriptor is what a node says of itself for an epoch: its name and
// role, its keys and address, and its Sphinx keys for that epoch and the
// next (published ahead, so that senders can build packets across the
// change). It is signed with the node's identity key.
//
// A node offers Sphinx keys of every packet format it can process, so that
// the authorities can move the network from one format to another at an
// epoch they choose without the nodes knowing of it ahead: each document
// takes the keys of its own format.
type Descriptor struct {
	Epoch       uint64
	Name        string
	Role        Role
	IdentityKey ed25519.PublicKey
	LinkKey     [KeySize]byte
	// SphinxKeys are the node's keys, at most one pair per scheme, in the
	// order of sphinx.Schemes' values.
	SphinxKeys []SphinxKeys
	Address    string
}

// SphinxKeys are a node's public Sphinx keys of one scheme for a
// descriptor's epoch and the next.
type SphinxKeys struct {
	Current, Next *sphinx.PublicKey
}

// Scheme is the keys' scheme.
func (k SphinxKeys) Scheme() sphinx.Scheme { return k.Current.Scheme() }

// Keys returns the descriptor's keys of scheme s, if it offers them.
func (d *Descriptor) Keys(s sphinx.Scheme) (SphinxKeys, bool) {
	for _, k := range d.SphinxKeys {
		if k.Scheme() == s {
			return k, true
		}
	}
	return SphinxKeys{}, false
}

// Descriptor encoding, version 1 (X25519 keys only):
//
//	"bcdescr" | u8 version | u64 epoch | u8 role | u8-prefixed name
//	| identity key [32] | link key [32] | Sphinx key [32] | next Sphinx key [32]
//	| u8-prefixed address | Ed25519 signature [64]
//
// Version 2 replaces the two X25519 keys with a list of keys by scheme:
//
//	... | link key [32] | u8 count, count × (u8 scheme | u16-prefixed key
//	| u16-prefixed next key) | u8-prefixed address | signature [64]
//
// A descriptor whose only keys are X25519 ones is written in version 1, which
// the previous release's authorities read; any other in version 2. The
// signature covers descriptorContext and everything before it.
const (
	descriptorMagic     = "bcdescr"
	descriptorVersionV1 = 1
	descriptorVersionV2 = 2
	descriptorContext   = "backchannel node descriptor v1\x00"
)

// ErrDescriptor is wrapped by every error about a descriptor that does not
// decode or verify.
var ErrDescriptor = errors.New("directory: bad descriptor")

func (d *Descriptor) body() ([]byte, error) {
	if d.Name == "" || len(d.Name) > MaxNameLength {
		return nil, fmt.Errorf("directory: node name %q is empty or longer than %d bytes", d.Name, MaxNameLength)
	}
	if d.Address == "" || len(d.Address) > MaxAddressLength {
		return nil, fmt.Errorf("directory: node %q address is empty or too long", d.Name)
	}
	if d.Role != RoleMix && d.Role != RoleProvider {
		return nil, fmt.Errorf("directory: node %q has unknown %v", d.Name, d.Role)
	}
	if len(d.IdentityKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("directory: node %q has a %d-byte identity key", d.Name, len(d.IdentityKey))
	}
	if err := d.checkKeys(); err != nil {
		return nil, err
	}
	v1 := len(d.SphinxKeys) == 1 && d.SphinxKeys[0].Scheme() == sphinx.X25519
	var b cryptobyte.Builder
	b.AddBytes([]byte(descriptorMagic))
	if v1 {
		b.AddUint8(descriptorVersionV1)
	} else {
		b.AddUint8(descriptorVersionV2)
	}
	b.AddUint64(d.Epoch)
	b.AddUint8(uint8(d.Role))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.Name)) })
	b.AddBytes(d.IdentityKey)
	b.AddBytes(d.LinkKey[:])
	if v1 {
		b.AddBytes(d.SphinxKeys[0].Current.Bytes())
		b.AddBytes(d.SphinxKeys[0].Next.Bytes())
	} else {
		b.AddUint8(uint8(len(d.SphinxKeys)))
		for _, k := range d.SphinxKeys {
			b.AddUint8(uint8(k.Scheme()))
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.Current.Bytes()) })
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.Next.Bytes()) })
		}
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.Address)) })
	return b.Bytes()
}

// checkKeys checks that the descriptor offers keys, a pair of one scheme
// each, in increasing order of scheme.
func (d *Descriptor) checkKeys() error {
	if len(d.SphinxKeys) == 0 {
		return fmt.Errorf("directory: node %q offers no Sphinx keys", d.Name)
	}
	for i, k := range d.SphinxKeys {
		if k.Current == nil || k.Next == nil || k.Current.Scheme() != k.Next.Scheme() {
			return fmt.Errorf("directory: node %q offers an incomplete pair of Sphinx keys", d.Name)
		}
		if i > 0 && k.Scheme() <= d.SphinxKeys[i-1].Scheme() {
			return fmt.Errorf("directory: node %q offers Sphinx keys out of order or twice", d.Name)
		}
	}
	return nil
}

// Sign encodes the descriptor and signs it with the node's identity key,
// whose public half must be d.IdentityKey.
func (d *Descriptor) Sign(key ed25519.PrivateKey) ([]byte, error) {
	if !key.Public().(ed25519.PublicKey).Equal(d.IdentityKey) {
		return nil, errors.New("directory: a descriptor signed with another node's key")
	}
	body, err := d.body()
	if err != nil {
		return nil, err
	}
	return append(body, ed25519.Sign(key, append([]byte(descriptorContext), body...))...), nil
}

// ParseDescriptor decodes a signed descriptor strictly and checks its
// signature against the identity key it names.
func ParseDescriptor(data []byte) (*Descriptor, error) {
	if len(data) < ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrDescriptor, len(data))
	}
	body, sig := data[:len(data)-ed25519.SignatureSize], data[len(data)-ed25519.SignatureSize:]
	s := cryptobyte.String(body)
	var magic []byte
	var version, role uint8
	var name, addr cryptobyte.String
	d := &Descriptor{IdentityKey: make(ed25519.PublicKey, ed25519.PublicKeySize)}
	if !s.ReadBytes(&magic, len(descriptorMagic)) || string(magic) != descriptorMagic {
		return nil, fmt.Errorf("%w: not a node descriptor", ErrDescriptor)
	}
	if !s.ReadUint8(&version) || (version != descriptorVersionV1 && version != descriptorVersionV2) {
		return nil, fmt.Errorf("%w: descriptor version %d, this release reads versions %d and %d", ErrDescriptor, version, descriptorVersionV1, descriptorVersionV2)
	}
	if !s.ReadUint64(&d.Epoch) || !s.ReadUint8(&role) || !s.ReadUint8LengthPrefixed(&name) || !s.CopyBytes(d.IdentityKey) ||
		!s.CopyBytes(d.LinkKey[:]) {
		return nil, fmt.Errorf("%w: truncated", ErrDescriptor)
	}
	keys, err := readSphinxKeys(&s, version)
	if err != nil {
		return nil, err
	}
	d.SphinxKeys = keys
	if !s.ReadUint8LengthPrefixed(&addr) || !s.Empty() {
		return nil, fmt.Errorf("%w: truncated or trailing bytes", ErrDescriptor)
	}
	d.Role, d.Name, d.Address = Role(role), string(name), string(addr)
	if again, err := d.body(); err != nil || string(again) != string(body) {
		if err == nil {
			err = errors.New("not in its canonical encoding")
		}
		return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	if !ed25519.Verify(d.IdentityKey, append([]byte(descriptorContext), body...), sig) {
		return nil, fmt.Errorf("%w: the signature of %q does not verify", ErrDescriptor, d.Name)
	}
	return d, nil
}

// readSphinxKeys reads a descriptor's Sphinx keys: two X25519 keys in
// version 1, the list by scheme in version 2. An unknown scheme is refused:
// the node is newer than this authority, which must be upgraded first.
func readSphinxKeys(s *cryptobyte.String, version uint8) ([]SphinxKeys, error) {
	if version == descriptorVersionV1 {
		var current, next []byte
		if !s.ReadBytes(&current, KeySize) || !s.ReadBytes(&next, KeySize) {
			return nil, fmt.Errorf("%w: truncated", ErrDescriptor)
		}
		k, err := parseSphinxKeys(sphinx.X25519, current, next)
		return []SphinxKeys{k}, err
	}
	var count uint8
	if !s.ReadUint8(&count) {
		return nil, fmt.Errorf("%w: truncated", ErrDescriptor)
	}
	keys := make([]SphinxKeys, 0, count)
	for range count {
		var scheme uint8
		var current, next cryptobyte.String
		if !s.ReadUint8(&scheme) || !s.ReadUint16LengthPrefixed(&current) || !s.ReadUint16LengthPrefixed(&next) {
			return nil, fmt.Errorf("%w: truncated", ErrDescriptor)
		}
		if !slices.Contains(sphinx.Schemes, sphinx.Scheme(scheme)) {
			return nil, fmt.Errorf("%w: Sphinx keys of packet format %v, which this release does not know", ErrDescriptor, sphinx.Scheme(scheme))
		}
		k, err := parseSphinxKeys(sphinx.Scheme(scheme), current, next)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseSphinxKeys(s sphinx.Scheme, current, next []byte) (SphinxKeys, error) {
	var k SphinxKeys
	var err error
	if k.Current, err = sphinx.ParsePublicKey(s, current); err != nil {
		return k, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	if k.Next, err = sphinx.ParsePublicKey(s, next); err != nil {
		return k, fmt.Errorf("%w: next epoch's key: %v", ErrDescriptor, err)
	}
	return k, nil
}
