package directory

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Descriptor is what a node says of itself for an epoch: its name and
// role, its keys and address, and its Sphinx keys for that epoch and the
// next (published ahead, so that senders can build packets across the
// change). It is signed with the node's identity key.
type Descriptor struct {
	Epoch         uint64
	Name          string
	Role          Role
	IdentityKey   ed25519.PublicKey
	LinkKey       [KeySize]byte
	SphinxKey     [KeySize]byte // for Epoch
	NextSphinxKey [KeySize]byte // for Epoch+1
	Address       string
}

// Descriptor encoding, version 1:
//
//	"bcdescr" | u8 version | u64 epoch | u8 role | u8-prefixed name
//	| identity key [32] | link key [32] | Sphinx key [32] | next Sphinx key [32]
//	| u8-prefixed address | Ed25519 signature [64]
//
// The signature covers descriptorContext and everything before it.
const (
	descriptorMagic   = "bcdescr"
	descriptorVersion = 1
	descriptorContext = "backchannel node descriptor v1\x00"
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
	var b cryptobyte.Builder
	b.AddBytes([]byte(descriptorMagic))
	b.AddUint8(descriptorVersion)
	b.AddUint64(d.Epoch)
	b.AddUint8(uint8(d.Role))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.Name)) })
	b.AddBytes(d.IdentityKey)
	b.AddBytes(d.LinkKey[:])
	b.AddBytes(d.SphinxKey[:])
	b.AddBytes(d.NextSphinxKey[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.Address)) })
	return b.Bytes()
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
	if !s.ReadUint8(&version) || version != descriptorVersion {
		return nil, fmt.Errorf("%w: descriptor version %d, this build reads version %d", ErrDescriptor, version, descriptorVersion)
	}
	if !s.ReadUint64(&d.Epoch) || !s.ReadUint8(&role) || !s.ReadUint8LengthPrefixed(&name) || !s.CopyBytes(d.IdentityKey) ||
		!s.CopyBytes(d.LinkKey[:]) || !s.CopyBytes(d.SphinxKey[:]) || !s.CopyBytes(d.NextSphinxKey[:]) ||
		!s.ReadUint8LengthPrefixed(&addr) || !s.Empty() {
		return nil, fmt.Errorf("%w: truncated or trailing bytes", ErrDescriptor)
	}
	d.Role, d.Name, d.Address = Role(role), string(name), string(addr)
	if again, err := d.body(); err != nil || string(again) != string(body) {
		return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	if !ed25519.Verify(d.IdentityKey, append([]byte(descriptorContext), body...), sig) {
		return nil, fmt.Errorf("%w: the signature of %q does not verify", ErrDescriptor, d.Name)
	}
	return d, nil
}
