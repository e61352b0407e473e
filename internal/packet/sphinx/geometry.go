package sphinx

import (
	"fmt"

	"github.com/backchannel/backchannel/internal/packet/lioness"
)

// Sizes fixed by the packet format, whatever the geometry.
const (
	// versionLength is the length of the header's associated data, the
	// version bytes 00 00.
	versionLength = 2
	// GroupElementLength is the length of alpha, an X25519 u-coordinate.
	GroupElementLength = 32
	// MACLength is the length of the header MAC gamma (untruncated
	// HMAC-SHA256).
	MACLength = 32
	// NodeIDLength is the length of a node identifier in routing commands.
	NodeIDLength = 32
	// RecipientIDLength is the length of a recipient (mailbox) identifier.
	RecipientIDLength = 32
	// SURBIDLength is the length of a SURB identifier.
	SURBIDLength = 16
	// CommandsLength is the room each hop has for routing commands: a
	// next-hop command (1 + 32 + 32) plus a SURB-reply command (1 + 16).
	// It is the whole of a hop's routing information in the X25519 scheme;
	// a KEM scheme's hop also gets the next hop's ciphertext.
	CommandsLength = 82
	// PayloadTagLength is the length of the all-zero block before the message,
	// which the last hop (or a SURB's creator) checks to detect tampering.
	PayloadTagLength = 32
	// ReplyKeyLength is the length of a SURB's reply key: a LIONESS key then
	// IV.
	ReplyKeyLength = lioness.KeySize + lioness.IVSize
	// MaxHopsLimit is the largest number of hops a geometry may have. It
	// bounds the routing information so that unwrapping needs no allocation
	// for it.
	MaxHopsLimit = 16
)

// Geometry is the shape of every packet in a network: how many hops a path may
// have and how many bytes of user payload a packet carries. All packets of a
// geometry have the same length, so the geometry is part of the network's
// parameters, not chosen per packet.
type Geometry struct {
	// MaxHops is the number of hops the header has room for. Shorter paths
	// are padded with random filler, so path length does not show.
	MaxHops int
	// UserPayloadLength is the length of a message in a packet; shorter
	// messages are zero-padded to it.
	UserPayloadLength int
	// Scheme is how the header carries each hop's secret; the zero value
	// is X25519.
	Scheme Scheme
}

// DefaultGeometry is the production geometry.
//
// The X-Wing format: recorded headers stay closed unless ML-KEM-768 falls
// too. Its header is 7,164 bytes for 5 hops (476 in the X25519 format), so
// packets are 10,396 bytes; acks travel as forward packets, not as SURBs
// inside messages (an X-Wing SURB would not fit a packet).
//
// Five hops: the sender's provider, one mix in each of the three layers, and
// the recipient's provider, the stratified topology of Loopix, where three
// layers are what its anonymity analysis recommends.
//
// 3,200 bytes of user payload: the first message of a session is sealed to
// the recipient with the post-quantum X-Wing KEM (1,137 bytes of envelope)
// and carries the PQXDH Initial (1,161 bytes, most of it an ML-KEM
// ciphertext); later packets carry about 3,000 bytes of message each. In
// the X25519 format the same payload also holds the 684-byte SURB a
// contact of the previous release acknowledges with (3,122 bytes with the
// session record). Until the post-quantum envelope (2026-12) it was 2,048
// bytes, within a few bytes of Katzenpost's benchmark geometry (2,000), the
// figures of BENCHMARKS.md before that date.
var DefaultGeometry = Geometry{MaxHops: 5, UserPayloadLength: 3200, Scheme: XWing}

// Validate reports whether g can be used.
func (g Geometry) Validate() error {
	if g.MaxHops < 1 || g.MaxHops > MaxHopsLimit {
		return fmt.Errorf("sphinx: geometry has %d hops, want 1 to %d", g.MaxHops, MaxHopsLimit)
	}
	if !g.Scheme.known() {
		return fmt.Errorf("sphinx: geometry has the unknown packet format %v", g.Scheme)
	}
	if g.UserPayloadLength < 1 {
		return fmt.Errorf("sphinx: geometry has a user payload of %d bytes, want at least 1", g.UserPayloadLength)
	}
	if uint64(g.PayloadLength()) > lioness.MaxBlockSize {
		return fmt.Errorf("sphinx: geometry has a user payload of %d bytes, more than LIONESS can cipher", g.UserPayloadLength)
	}
	return nil
}

// PerHopRoutingInfoLength is what each hop gets of beta: 82 bytes of
// commands, and in a KEM scheme the next hop's ciphertext after them.
func (g Geometry) PerHopRoutingInfoLength() int {
	if g.Scheme.isKEM() {
		return CommandsLength + g.Scheme.elementLength()
	}
	return CommandsLength
}

// RoutingInfoLength is the length of beta: PerHopRoutingInfoLength per hop.
func (g Geometry) RoutingInfoLength() int { return g.PerHopRoutingInfoLength() * g.MaxHops }

// HeaderLength is version (2), the element (alpha, 32 bytes, or the first
// hop's ciphertext), beta and gamma (32): 476 bytes for 5 X25519 hops,
// 7,164 for 5 X-Wing hops.
func (g Geometry) HeaderLength() int {
	return versionLength + g.Scheme.elementLength() + g.RoutingInfoLength() + MACLength
}

// PayloadLength is the length of the encrypted payload: the zero tag and the
// user payload.
func (g Geometry) PayloadLength() int { return PayloadTagLength + g.UserPayloadLength }

// PacketLength is the length of every packet of this geometry.
func (g Geometry) PacketLength() int { return g.HeaderLength() + g.PayloadLength() }

// SURBLength is the length of a SURB: a header, the first hop's ID and the
// reply key.
func (g Geometry) SURBLength() int { return g.HeaderLength() + NodeIDLength + ReplyKeyLength }

// macOffset is where gamma starts in a header.
func (g Geometry) macOffset() int { return g.HeaderLength() - MACLength }

// keystreamLength is the length of a hop's header keystream: one hop's
// routing information more than beta.
func (g Geometry) keystreamLength() int { return g.PerHopRoutingInfoLength() * (g.MaxHops + 1) }

// String describes g for logs and errors.
func (g Geometry) String() string {
	return fmt.Sprintf("%v, %d hops, %d-byte payload, %d-byte packets", g.Scheme, g.MaxHops, g.UserPayloadLength, g.PacketLength())
}
