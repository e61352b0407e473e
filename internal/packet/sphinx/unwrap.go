package sphinx

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"

	"github.com/cloudflare/circl/kem/xwing"

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
	// ReplayTag is SHA-512/256 of the incoming element: alpha, or the hop's
	// whole KEM ciphertext. The MAC covers it, so a replayed packet has the
	// same tag; a node keeps the tags it has seen per epoch key and drops a
	// packet whose tag it knows.
	ReplayTag [ReplayTagLength]byte
	// Payload is nil at a hop that forwards. At the last hop of a forward
	// packet it is the user payload (zero tag checked and removed); at the
	// last hop of a SURB reply it is the whole payload, still encrypted for
	// the SURB's creator. It aliases the packet.
	Payload []byte
}

// Unwrap removes one layer of packet, in place, with the node's private key
// for the epoch, whose scheme must be the geometry's. It accepts any packet at
// least a header plus 33 bytes long and does not compare the payload length
// with the geometry.
//
// An error wraps one of [ErrPacketTooShort], [ErrVersion],
// [ErrLowOrderPoint], [ErrMAC], [ErrCommand] or [ErrPayloadTag]; after an
// error the packet must be dropped (its routing information or payload may
// have been decrypted).
func (f *Format) Unwrap(key *PrivateKey, packet []byte) (Unwrapped, error) {
	var res Unwrapped
	g := f.geometry
	if key.scheme != g.Scheme {
		return res, fmt.Errorf("sphinx: a %v key cannot unwrap %v packets", key.scheme, g.Scheme)
	}
	if err := f.checkFrame(packet); err != nil {
		return res, err
	}
	element := packet[versionLength : versionLength+g.Scheme.elementLength()]
	s := f.takeScratch()
	defer f.returnScratch(s)
	switch g.Scheme {
	case X25519:
		if err := x25519.ScalarMult(&s.secret, &key.secret, (*[x25519.Size]byte)(element)); err != nil {
			return res, ErrLowOrderPoint
		}
	case XWing:
		if err := decapsulate(&s.secret, key, element); err != nil {
			return res, err
		}
	}
	return f.unwrapWithSecret(s, packet)
}

// unwrapScratch is what an unwrap works in: the hop's secret and keys, the
// MAC it computes and the keystream's tail. They reach the heap through
// the hash and cipher interfaces, so they come from a pool (Format.scratch)
// instead of each unwrap allocating them, and are cleared before going
// back.
type unwrapScratch struct {
	secret [32]byte
	keys   packetKeys
	mac    [MACLength]byte
	tail   [maxPerHopRoutingInfoLength]byte
}

func (f *Format) takeScratch() *unwrapScratch {
	if s, ok := f.scratch.Get().(*unwrapScratch); ok {
		return s
	}
	return new(unwrapScratch)
}

func (f *Format) returnScratch(s *unwrapScratch) {
	*s = unwrapScratch{}
	f.scratch.Put(s)
}

// checkFrame checks what can be checked before any cryptography: the length
// and the version bytes.
func (f *Format) checkFrame(packet []byte) error {
	headerLength := f.geometry.HeaderLength()
	if len(packet) < headerLength+lioness.MinBlockSize {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrPacketTooShort, len(packet), headerLength+lioness.MinBlockSize)
	}
	if packet[0] != headerVersion[0] || packet[1] != headerVersion[1] {
		return fmt.Errorf("%w: %02x%02x", ErrVersion, packet[0], packet[1])
	}
	return nil
}

// maxPerHopRoutingInfoLength is the largest PerHopRoutingInfoLength of any
// scheme: commands and an X-Wing ciphertext.
const maxPerHopRoutingInfoLength = CommandsLength + xwing.CiphertextSize

// unwrapWithSecret is the part of Unwrap after the hop's shared secret is
// known, the same for every scheme but for how the next hop's element is
// found: X25519 blinds alpha, a KEM scheme takes the next ciphertext from
// the hop's routing information (and there is no blinding).
func (f *Format) unwrapWithSecret(s *unwrapScratch, packet []byte) (Unwrapped, error) {
	var res Unwrapped
	g := f.geometry
	headerLength := g.HeaderLength()
	elementLength := g.Scheme.elementLength()
	element := packet[versionLength : versionLength+elementLength]
	res.ReplayTag = sha512.Sum512_256(element)
	keys, mac := &s.keys, &s.mac
	deriveKeys(keys, &s.secret)

	macOffset := g.macOffset()
	keys.headerMAC(mac, packet[:macOffset])
	if !hmac.Equal(mac[:], packet[macOffset:headerLength]) {
		return res, ErrMAC
	}

	// Decrypt beta in place, and one hop's routing information of keystream
	// after it, which becomes the end of the next hop's beta: together,
	// (beta ‖ 0^perHop) XOR keystream. The hop's own part is its commands,
	// then (KEM) the next hop's ciphertext.
	perHop := g.PerHopRoutingInfoLength()
	beta := packet[versionLength+elementLength : macOffset]
	tail := s.tail[:perHop]
	keys.headerKeystreamXOR(beta, tail)
	cmds, err := ParseCommands(beta[:CommandsLength])
	if err != nil {
		return res, err
	}
	res.Commands = cmds

	payload := packet[headerLength:]
	if err := lioness.Decrypt(keys.lionessKey(), keys.lionessIV(), payload); err != nil {
		panic("sphinx: internal error: " + err.Error())
	}

	if next, ok := cmds.NextHop(); ok {
		if g.Scheme.isKEM() {
			copy(element, beta[CommandsLength:perHop])
		} else if err := blind(keys, (*[x25519.Size]byte)(element)); err != nil {
			return res, err
		}
		copy(beta, beta[perHop:])
		copy(beta[len(beta)-perHop:], tail)
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

// blind multiplies alpha, in place, by the hop's blinding factor.
func blind(keys *packetKeys, alpha *[x25519.Size]byte) error {
	var blinding [32]byte
	keys.blindingFactor(&blinding)
	err := x25519.ScalarMult(alpha, &blinding, alpha)
	clear(blinding[:])
	if err != nil {
		// Unreachable: alpha has no low order, and a clamped scalar keeps
		// it off the identity.
		return ErrLowOrderPoint
	}
	return nil
}

// isZero reports in constant time whether b is all zeros.
func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}
