package wire

import "fmt"

// A Delivery is what a provider keeps in a mailbox for its user, and what a
// fetch reply carries: the last hop's output for a packet addressed to the
// user. For a forward packet it is the message the sender wrote (zero-padded
// to the geometry's user payload); for a reply to one of the user's SURBs it
// is the SURB's ID and the payload still encrypted for the user.
type Delivery struct {
	// SURBID is set for a SURB reply.
	SURBID *[16]byte
	// Payload is the message, or the encrypted reply payload.
	Payload []byte
}

// Delivery kinds, the first byte of the encoding (version 1).
const (
	deliveryMessage   = 1
	deliverySURBReply = 2
)

// MarshalBinary encodes the delivery: kind byte, SURB ID for a reply,
// payload.
func (d Delivery) MarshalBinary() ([]byte, error) {
	if d.SURBID == nil {
		return append([]byte{deliveryMessage}, d.Payload...), nil
	}
	b := append([]byte{deliverySURBReply}, d.SURBID[:]...)
	return append(b, d.Payload...), nil
}

// UnmarshalBinary decodes a delivery; Payload aliases b.
func (d *Delivery) UnmarshalBinary(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: empty delivery", ErrMalformedFrame)
	}
	switch b[0] {
	case deliveryMessage:
		*d = Delivery{Payload: b[1:]}
	case deliverySURBReply:
		if len(b) < 1+16 {
			return fmt.Errorf("%w: SURB reply delivery of %d bytes", ErrMalformedFrame, len(b))
		}
		var id [16]byte
		copy(id[:], b[1:17])
		*d = Delivery{SURBID: &id, Payload: b[17:]}
	default:
		return fmt.Errorf("%w: delivery kind %d", ErrMalformedFrame, b[0])
	}
	return nil
}
