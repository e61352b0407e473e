package session

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// EnvelopeKeys are a session's keys for the keyed envelope (package
// envelope), one per direction: what every payload of the session is
// encrypted under on its way through the recipient's provider, so that
// the payload names neither the sender nor the session. They come from
// PQXDH's SK with HKDF-SHA-256 and an info string of their own (as the
// ratchet's header keys do: PQXDH §3.3 lets SK, or keys derived from it,
// key the protocol that follows), so they are as post-quantum as SK, and
// they last as long as the session.
type EnvelopeKeys struct {
	Send, Receive [KeySize]byte
}

// envelopeKeys derives the session's envelope keys from SK, for the
// initiator's side or the responder's.
func envelopeKeys(sk [KeySize]byte, initiator bool) (EnvelopeKeys, error) {
	out, err := hkdf.Key(sha256.New, sk[:], nil, "backchannel envelope keys v1", 2*KeySize)
	if err != nil {
		return EnvelopeKeys{}, fmt.Errorf("session: envelope keys: %w", err)
	}
	defer clear(out)
	var k EnvelopeKeys
	toResponder, toInitiator := out[:KeySize], out[KeySize:]
	if initiator {
		copy(k.Send[:], toResponder)
		copy(k.Receive[:], toInitiator)
	} else {
		copy(k.Send[:], toInitiator)
		copy(k.Receive[:], toResponder)
	}
	return k, nil
}
