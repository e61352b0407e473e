package envelope

import "fmt"

// ackVersion is the first byte of an ack, and ackKind the one kind of SURB
// reply today: an acknowledgement.
const (
	ackVersion = 1
	ackKind    = 1
)

// Ack is what travels back in a SURB reply: the recipient's word that the
// message the SURB came with was received and kept. Which message that was
// the sender knows from the SURB's ID; that the reply decrypts under the
// SURB's key shows it came back through that SURB, which only the recipient
// held (it travelled sealed to the recipient).
type Ack struct{}

// MarshalBinary encodes the ack: u8 version | u8 kind, zero-padded by the
// Sphinx layer.
func (Ack) MarshalBinary() ([]byte, error) { return []byte{ackVersion, ackKind}, nil }

// ParseAck decodes a SURB reply's decrypted payload.
func ParseAck(payload []byte) (Ack, error) {
	if len(payload) < 2 {
		return Ack{}, fmt.Errorf("%w: SURB reply of %d bytes", ErrMalformed, len(payload))
	}
	if payload[0] != ackVersion {
		return Ack{}, fmt.Errorf("%w: SURB reply version %d, this program reads version %d", ErrMalformed, payload[0], ackVersion)
	}
	if payload[1] != ackKind {
		return Ack{}, fmt.Errorf("%w: SURB reply kind %d", ErrMalformed, payload[1])
	}
	for _, b := range payload[2:] {
		if b != 0 {
			return Ack{}, fmt.Errorf("%w: SURB reply padding is not zero", ErrMalformed)
		}
	}
	return Ack{}, nil
}
