package authority

import (
	"crypto/ed25519"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/backchannel/backchannel/internal/pki/directory"
)

// A bundle is the set of descriptors an authority holds for an epoch, signed
// by the authority, as it gives them to its peers for the tally:
//
//	"bcbundle" | u8 version | u64 epoch | authority key [32]
//	| u16 count | (u16-prefixed descriptor)* | Ed25519 signature [64]
//
// The signature covers bundleContext and everything before it, so that a
// peer counts a set only as the authority that vouches for it.
const (
	bundleMagic   = "bcbundle"
	bundleVersion = 1
	bundleContext = "backchannel descriptor bundle v1\x00"
	// MaxDescriptors bounds a bundle.
	MaxDescriptors = 4096
)

// SignBundle encodes and signs an authority's descriptors for an epoch.
func SignBundle(epoch uint64, descriptors [][]byte, key ed25519.PrivateKey) ([]byte, error) {
	if len(descriptors) > MaxDescriptors {
		return nil, fmt.Errorf("authority: %d descriptors in a bundle, at most %d", len(descriptors), MaxDescriptors)
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(bundleMagic))
	b.AddUint8(bundleVersion)
	b.AddUint64(epoch)
	b.AddBytes(key.Public().(ed25519.PublicKey))
	b.AddUint16(uint16(len(descriptors)))
	for _, d := range descriptors {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(d) })
	}
	body, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return append(body, ed25519.Sign(key, append([]byte(bundleContext), body...))...), nil
}

// ParseBundle decodes a bundle strictly and checks that the authority with
// key signed it for this epoch. The descriptors are returned as they are;
// Tally checks each.
func ParseBundle(data []byte, epoch uint64, key ed25519.PublicKey) ([][]byte, error) {
	if len(data) < ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: a bundle of %d bytes", directory.ErrDescriptor, len(data))
	}
	body, sig := data[:len(data)-ed25519.SignatureSize], data[len(data)-ed25519.SignatureSize:]
	s := cryptobyte.String(body)
	var magic []byte
	var version uint8
	var gotEpoch uint64
	var count uint16
	signer := make([]byte, ed25519.PublicKeySize)
	if !s.ReadBytes(&magic, len(bundleMagic)) || string(magic) != bundleMagic || !s.ReadUint8(&version) || version != bundleVersion {
		return nil, fmt.Errorf("%w: not a version %d descriptor bundle", directory.ErrDescriptor, bundleVersion)
	}
	if !s.ReadUint64(&gotEpoch) || !s.CopyBytes(signer) || !s.ReadUint16(&count) {
		return nil, fmt.Errorf("%w: truncated bundle", directory.ErrDescriptor)
	}
	if gotEpoch != epoch || !key.Equal(ed25519.PublicKey(signer)) {
		return nil, fmt.Errorf("%w: a bundle of epoch %d from another authority, want epoch %d", directory.ErrDescriptor, gotEpoch, epoch)
	}
	if count > MaxDescriptors {
		return nil, fmt.Errorf("%w: %d descriptors in a bundle", directory.ErrDescriptor, count)
	}
	out := make([][]byte, 0, count)
	for range count {
		var d cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&d) {
			return nil, fmt.Errorf("%w: truncated bundle", directory.ErrDescriptor)
		}
		out = append(out, append([]byte(nil), d...))
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the bundle", directory.ErrDescriptor, len(s))
	}
	if !ed25519.Verify(key, append([]byte(bundleContext), body...), sig) {
		return nil, fmt.Errorf("%w: the bundle's signature does not verify", directory.ErrDescriptor)
	}
	return out, nil
}
