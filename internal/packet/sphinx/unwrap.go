package sphinx

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"

	"github.com/backchannel/backchannel/internal/packet/lioness"
	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// ReplayTagLength is the length of a replay tag.
const ReplayTagLength = sha512.Size256

// Unwrapped is what a node learns from removing its layer of a packet.
type Unwrapped struct {
	// Commands are the hop's routing commands. With a [NextNodeHop], the
	// packet has been rewritten in place for the next hop.
	Commands Commands
	// ReplayTag is SHA-512/256 of the incoming alpha. The MAC covers alpha, so
	// a replayed packet has the same tag; a node keeps the tags it has seen
	// per epoch key and drops a packet whose tag it knows.
	ReplayTag [ReplayTagLength]byte
	// Payload is nil at a hop that forwards. At the last hop of a forward
	// packet it is the user payload (zero tag checked and removed); at the
	// last hop of a SURB reply it is the whole payload, still encrypted for
	// the SURB's creator. It aliases the packet.
	Payload []byte
}

// Unwrap removes one layer of packet, in place, with the node's private key
// (a raw X25519 scalar, clamped here). It accepts any packet at least a
// header plus 33 bytes long and does not compare the payload length with the
// geometry.
//
// An error wraps one of [ErrPacketTooShort], [ErrVersion],
// [ErrLowOrderPoint], [ErrMAC], [ErrCommand] or [ErrPayloadTag]; after an
// error the packet must be dropped (its routing information or payload may
// have been decrypted).
func (f *Format) Unwrap(privateKey *[x25519.Size]byte, packet []byte) (Unwrapped, error) {
	var res Unwrapped
	g := f.geometry
	headerLength := g.HeaderLength()
	if len(packet) < headerLength+lioness.MinBlockSize {
		return res, fmt.Errorf("%w: %d bytes, want at least %d", ErrPacketTooShort, len(packet), headerLength+lioness.MinBlockSize)
	}
	if packet[0] != headerVersion[0] || packet[1] != headerVersion[1] {
		return res, fmt.Errorf("%w: %02x%02x", ErrVersion, packet[0], packet[1])
	}
	alpha := (*[GroupElementLength]byte)(packet[versionLength : versionLength+GroupElementLength])
	res.ReplayTag = sha512.Sum512_256(alpha[:])

	var secret [32]byte
	if err := x25519.ScalarMult(&secret, privateKey, alpha); err != nil {
		return res, ErrLowOrderPoint
	}
	var keys packetKeys
	deriveKeys(&keys, &secret)
	clear(secret[:])
	defer clear(keys[:])

	macOffset := g.macOffset()
	var mac [MACLength]byte
	keys.headerMAC(&mac, packet[:macOffset])
	if !hmac.Equal(mac[:], packet[macOffset:headerLength]) {
		return res, ErrMAC
	}

	// Decrypt beta in place, and the 82 bytes of keystream after it, which
	// become the end of the next hop's beta: together, (beta ‖ 0^82) XOR
	// keystream. MaxHopsLimit makes routing information at most 1,312 bytes.
	beta := packet[versionLength+GroupElementLength : macOffset]
	var tail [PerHopRoutingInfoLength]byte
	keys.headerKeystreamXOR(beta, tail[:])
	cmds, err := ParseCommands(beta[:PerHopRoutingInfoLength])
	if err != nil {
		return res, err
	}
	res.Commands = cmds

	payload := packet[headerLength:]
	if err := lioness.Decrypt(keys.lionessKey(), keys.lionessIV(), payload); err != nil {
		panic("sphinx: internal error: " + err.Error())
	}

	if next, ok := cmds.NextHop(); ok {
		var blinding [32]byte
		keys.blindingFactor(&blinding)
		err := x25519.ScalarMult(alpha, &blinding, alpha)
		clear(blinding[:])
		if err != nil {
			// Unreachable: alpha has no low order, and a clamped scalar
			// keeps it off the identity.
			return res, ErrLowOrderPoint
		}
		copy(beta, beta[PerHopRoutingInfoLength:])
		copy(beta[len(beta)-PerHopRoutingInfoLength:], tail[:])
		copy(packet[macOffset:headerLength], next.MAC[:])
		return res, nil
	}
	if _, ok := cmds.SURBReply(); ok {
		res.Payload = payload
		return res, nil
	}
	if !isZero(payload[:PayloadTagLength]) {
		return res, ErrPayloadTag
	}
	res.Payload = payload[PayloadTagLength:]
	return res, nil
}

// isZero reports in constant time whether b is all zeros.
func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}
