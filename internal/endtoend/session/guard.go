package session

import (
	"fmt"
	"sort"

	"golang.org/x/crypto/cryptobyte"
)

// Guard encoding, version 1, so the responder keeps it across restarts for
// as long as the prekeys live (store it sealed, see package vault):
//
//	"bcguard" | u8 version | u16 prekey count | (u32 prekey ID | u32 key count | keys [32]…) per prekey
//
// Prekeys and keys are in ascending order, so the encoding is canonical.
const (
	guardMagic   = "bcguard"
	guardVersion = 1
)

// MarshalBinary encodes the guard.
func (g *Guard) MarshalBinary() ([]byte, error) {
	prekeys := make([]uint32, 0, len(g.seen))
	for p := range g.seen {
		prekeys = append(prekeys, p)
	}
	sort.Slice(prekeys, func(i, j int) bool { return prekeys[i] < prekeys[j] })
	var b cryptobyte.Builder
	b.AddBytes([]byte(guardMagic))
	b.AddUint8(guardVersion)
	b.AddUint16(uint16(len(prekeys)))
	for _, p := range prekeys {
		keys := make([][32]byte, 0, len(g.seen[p]))
		for k := range g.seen[p] {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return string(keys[i][:]) < string(keys[j][:]) })
		b.AddUint32(p)
		b.AddUint32(uint32(len(keys)))
		for _, k := range keys {
			b.AddBytes(k[:])
		}
	}
	return b.Bytes()
}

// UnmarshalBinary decodes a guard strictly.
func (g *Guard) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	var count uint16
	if !s.ReadBytes(&magic, len(guardMagic)) || string(magic) != guardMagic {
		return fmt.Errorf("%w: not a replay guard", ErrMalformed)
	}
	if !s.ReadUint8(&version) || version != guardVersion {
		return fmt.Errorf("%w: replay guard version %d, this program reads version %d", ErrMalformed, version, guardVersion)
	}
	if !s.ReadUint16(&count) {
		return fmt.Errorf("%w: truncated replay guard", ErrMalformed)
	}
	out := Guard{seen: map[uint32]map[[32]byte]struct{}{}}
	var last uint32
	for i := range count {
		var p, n uint32
		if !s.ReadUint32(&p) || !s.ReadUint32(&n) || (i > 0 && p <= last) || uint64(n)*32 > uint64(len(s)) {
			return fmt.Errorf("%w: replay guard prekey entry", ErrMalformed)
		}
		last = p
		keys := make(map[[32]byte]struct{}, n)
		var prev [32]byte
		for j := range n {
			var k [32]byte
			if !s.CopyBytes(k[:]) || (j > 0 && string(k[:]) <= string(prev[:])) {
				return fmt.Errorf("%w: replay guard keys", ErrMalformed)
			}
			keys[k], prev = struct{}{}, k
		}
		out.seen[p] = keys
	}
	if !s.Empty() {
		return fmt.Errorf("%w: %d bytes after the replay guard", ErrMalformed, len(s))
	}
	*g = out
	return nil
}
