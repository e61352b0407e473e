package directory

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// Document encoding (big-endian, cryptobyte length prefixes), version 1:
//
//	"bcnetdoc" | u8 version | u64 epoch | u64 valid-from | u64 valid-until (Unix seconds)
//	u8 layers | u32 mean delay (ms) | f64 send rate | f64 loop rate | f64 drop rate
//	| f64 mix loop rate | u32 poll interval (ms) | u8 max hops | u32 user payload length
//	u16 node count, then per node:
//	u8 role | u8 layer | u8-prefixed name | identity key [32] | link key [32]
//	| Sphinx key [32] | u8-prefixed address
//
// Version 1 is the X25519 packet format, and a network of that format keeps
// writing it, so that nodes and clients of earlier releases read its
// documents. Version 2 names the packet format, for every other one:
//
//	... | u32 user payload length | u8 packet format | u16 node count, then per node:
//	... | link key [32] | Sphinx key [the format's public key length] | u8-prefixed address
//
// A release that does not know version 2 refuses such a document, saying so;
// one that knows version 2 but not the format names it.
const (
	documentMagic = "bcnetdoc"
	// documentVersionX25519 is version 1, whose packet format is X25519.
	documentVersionX25519 = 1
	// documentVersionNamed is version 2, which names its packet format.
	documentVersionNamed = 2
)

// ErrMalformed is wrapped by every error about a document or signed document
// that cannot be decoded.
var ErrMalformed = errors.New("directory: malformed document")

// MarshalBinary encodes d, after validating it. Durations are encoded in
// whole milliseconds and times in whole seconds.
func (d *Document) MarshalBinary() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	p := d.Parameters
	named := p.Geometry.Scheme != sphinx.X25519
	var b cryptobyte.Builder
	b.AddBytes([]byte(documentMagic))
	if named {
		b.AddUint8(documentVersionNamed)
	} else {
		b.AddUint8(documentVersionX25519)
	}
	b.AddUint64(d.Epoch)
	b.AddUint64(uint64(d.ValidFrom.Unix()))
	b.AddUint64(uint64(d.ValidUntil.Unix()))
	b.AddUint8(p.Layers)
	b.AddUint32(uint32(p.MeanDelay.Milliseconds()))
	for _, r := range []float64{p.SendRate, p.LoopRate, p.DropRate, p.MixLoopRate} {
		b.AddUint64(math.Float64bits(r))
	}
	b.AddUint32(uint32(p.PollInterval.Milliseconds()))
	b.AddUint8(uint8(p.Geometry.MaxHops))
	b.AddUint32(uint32(p.Geometry.UserPayloadLength))
	if named {
		b.AddUint8(uint8(p.Geometry.Scheme))
	}
	b.AddUint16(uint16(len(d.Nodes)))
	for i := range d.Nodes {
		n := &d.Nodes[i]
		b.AddUint8(uint8(n.Role))
		b.AddUint8(n.Layer)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(n.Name)) })
		b.AddBytes(n.IdentityKey)
		b.AddBytes(n.LinkKey[:])
		b.AddBytes(n.SphinxKey.Bytes())
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(n.Address)) })
	}
	return b.Bytes()
}

// UnmarshalBinary decodes a document strictly (exact length, known version)
// and validates it. Errors wrap [ErrMalformed] or say what is inconsistent.
func (d *Document) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	if !s.ReadBytes(&magic, len(documentMagic)) || string(magic) != documentMagic {
		return fmt.Errorf("%w: not a network document", ErrMalformed)
	}
	if !s.ReadUint8(&version) || (version != documentVersionX25519 && version != documentVersionNamed) {
		return fmt.Errorf("%w: version %d, this release reads versions %d and %d: is it older than the network?",
			ErrMalformed, version, documentVersionX25519, documentVersionNamed)
	}
	var out Document
	var from, until uint64
	var meanDelay, poll, payload uint32
	var maxHops, scheme uint8
	var rates [4]uint64
	var count uint16
	ok := s.ReadUint64(&out.Epoch) && s.ReadUint64(&from) && s.ReadUint64(&until) &&
		s.ReadUint8(&out.Parameters.Layers) && s.ReadUint32(&meanDelay) &&
		s.ReadUint64(&rates[0]) && s.ReadUint64(&rates[1]) && s.ReadUint64(&rates[2]) && s.ReadUint64(&rates[3]) &&
		s.ReadUint32(&poll) && s.ReadUint8(&maxHops) && s.ReadUint32(&payload) &&
		(version == documentVersionX25519 || s.ReadUint8(&scheme)) && s.ReadUint16(&count)
	if !ok {
		return fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	format := sphinx.Scheme(scheme)
	if version == documentVersionNamed && !slices.Contains(sphinx.Schemes, format) || format == sphinx.X25519 && version != documentVersionX25519 {
		return fmt.Errorf("%w: packet format %v, which this release does not know (it knows %v): is it older than the network?",
			ErrMalformed, format, sphinx.Schemes)
	}
	if from > math.MaxInt64 || until > math.MaxInt64 {
		return fmt.Errorf("%w: validity times out of range", ErrMalformed)
	}
	out.ValidFrom = time.Unix(int64(from), 0).UTC()
	out.ValidUntil = time.Unix(int64(until), 0).UTC()
	p := &out.Parameters
	p.MeanDelay = time.Duration(meanDelay) * time.Millisecond
	p.SendRate = math.Float64frombits(rates[0])
	p.LoopRate = math.Float64frombits(rates[1])
	p.DropRate = math.Float64frombits(rates[2])
	p.MixLoopRate = math.Float64frombits(rates[3])
	p.PollInterval = time.Duration(poll) * time.Millisecond
	p.Geometry = sphinx.Geometry{MaxHops: int(maxHops), UserPayloadLength: int(payload), Scheme: format}
	if int(count) > MaxNodes {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrMalformed, count, MaxNodes)
	}
	out.Nodes = make([]Node, count)
	for i := range out.Nodes {
		n := &out.Nodes[i]
		var role uint8
		var name, identity, link, sphinxKey, address []byte
		ok := s.ReadUint8(&role) && s.ReadUint8(&n.Layer) &&
			s.ReadUint8LengthPrefixed((*cryptobyte.String)(&name)) &&
			s.ReadBytes(&identity, ed25519.PublicKeySize) && s.ReadBytes(&link, KeySize) &&
			s.ReadBytes(&sphinxKey, format.PublicKeyLength()) && s.ReadUint8LengthPrefixed((*cryptobyte.String)(&address))
		if !ok {
			return fmt.Errorf("%w: node %d truncated", ErrMalformed, i)
		}
		key, err := sphinx.ParsePublicKey(format, sphinxKey)
		if err != nil {
			return fmt.Errorf("%w: node %q: %v", ErrMalformed, name, err)
		}
		n.SphinxKey = key
		n.Role = Role(role)
		n.Name = string(name)
		n.IdentityKey = ed25519.PublicKey(append([]byte(nil), identity...))
		copy(n.LinkKey[:], link)
		n.Address = string(address)
	}
	if !s.Empty() {
		return fmt.Errorf("%w: %d bytes after the last node", ErrMalformed, len(s))
	}
	if err := out.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	*d = out
	return nil
}
