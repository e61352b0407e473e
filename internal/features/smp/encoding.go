package smp

import (
	"fmt"

	"github.com/gtank/ristretto255"
)

// Encoding, version 1: u8 version | u8 message number (1–4) | elements
// (32 bytes each) | scalars (32 bytes each), in the order the Message types
// list them. Decoding is strict: canonical encodings only, and no element
// may be the identity.
const version = 1

func (m *Message1) elements() []**ristretto255.Element {
	return []**ristretto255.Element{&m.G2a, &m.G3a}
}
func (m *Message1) scalars() []**ristretto255.Scalar {
	return []**ristretto255.Scalar{&m.C2, &m.D2, &m.C3, &m.D3}
}
func (m *Message2) elements() []**ristretto255.Element {
	return []**ristretto255.Element{&m.G2b, &m.G3b, &m.Pb, &m.Qb}
}
func (m *Message2) scalars() []**ristretto255.Scalar {
	return []**ristretto255.Scalar{&m.C2, &m.D2, &m.C3, &m.D3, &m.Cp, &m.D5, &m.D6}
}
func (m *Message3) elements() []**ristretto255.Element {
	return []**ristretto255.Element{&m.Pa, &m.Qa, &m.Ra}
}
func (m *Message3) scalars() []**ristretto255.Scalar {
	return []**ristretto255.Scalar{&m.Cp, &m.D5, &m.D6, &m.Cr, &m.D7}
}
func (m *Message4) elements() []**ristretto255.Element { return []**ristretto255.Element{&m.Rb} }
func (m *Message4) scalars() []**ristretto255.Scalar   { return []**ristretto255.Scalar{&m.Cr, &m.D7} }

type message interface {
	elements() []**ristretto255.Element
	scalars() []**ristretto255.Scalar
}

func marshal(number byte, m message) ([]byte, error) {
	out := []byte{version, number}
	for _, e := range m.elements() {
		if *e == nil {
			return nil, fmt.Errorf("smp: message %d is incomplete", number)
		}
		out = (*e).Encode(out)
	}
	for _, s := range m.scalars() {
		if *s == nil {
			return nil, fmt.Errorf("smp: message %d is incomplete", number)
		}
		out = (*s).Encode(out)
	}
	return out, nil
}

func unmarshal(number byte, m message, b []byte) error {
	es, ss := m.elements(), m.scalars()
	if len(b) != 2+32*(len(es)+len(ss)) {
		return fmt.Errorf("%w: message %d of %d bytes", ErrMalformed, number, len(b))
	}
	if b[0] != version || b[1] != number {
		return fmt.Errorf("%w: version %d message %d, want version %d message %d", ErrMalformed, b[0], b[1], version, number)
	}
	b = b[2:]
	identity := ristretto255.NewElement().Zero()
	for i, e := range es {
		*e = ristretto255.NewElement()
		if err := (*e).Decode(b[:32]); err != nil || (*e).Equal(identity) == 1 {
			return fmt.Errorf("%w: message %d element %d is not a valid non-identity element", ErrMalformed, number, i)
		}
		b = b[32:]
	}
	for i, s := range ss {
		*s = ristretto255.NewScalar()
		if err := (*s).Decode(b[:32]); err != nil {
			return fmt.Errorf("%w: message %d scalar %d is not canonical", ErrMalformed, number, i)
		}
		b = b[32:]
	}
	return nil
}

// MarshalBinary and UnmarshalBinary encode the four messages.
func (m *Message1) MarshalBinary() ([]byte, error) { return marshal(1, m) }
func (m *Message1) UnmarshalBinary(b []byte) error { return unmarshal(1, m, b) }
func (m *Message2) MarshalBinary() ([]byte, error) { return marshal(2, m) }
func (m *Message2) UnmarshalBinary(b []byte) error { return unmarshal(2, m, b) }
func (m *Message3) MarshalBinary() ([]byte, error) { return marshal(3, m) }
func (m *Message3) UnmarshalBinary(b []byte) error { return unmarshal(3, m, b) }
func (m *Message4) MarshalBinary() ([]byte, error) { return marshal(4, m) }
func (m *Message4) UnmarshalBinary(b []byte) error { return unmarshal(4, m, b) }

// valid reports whether every element of a message is present and not the
// identity (messages built in memory rather than decoded).
func valid(m message) bool {
	identity := ristretto255.NewElement().Zero()
	for _, e := range m.elements() {
		if *e == nil || (*e).Equal(identity) == 1 {
			return false
		}
	}
	for _, s := range m.scalars() {
		if *s == nil {
			return false
		}
	}
	return true
}
