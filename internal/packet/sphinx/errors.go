package sphinx

import "errors"

// Errors from [Format.Unwrap] and [Format.DecryptSURBPayload]. Each names why a
// packet was dropped, so that a node can count drops by reason with
// [errors.Is]; none carries key material.
var (
	// ErrPacketTooShort: the packet is shorter than a header and the shortest
	// payload.
	ErrPacketTooShort = errors.New("sphinx: packet too short")
	// ErrVersion: the version bytes are not 00 00.
	ErrVersion = errors.New("sphinx: unsupported packet version")
	// ErrLowOrderPoint: alpha is a low-order point (the shared secret would
	// be all zeros).
	ErrLowOrderPoint = errors.New("sphinx: low-order group element")
	// ErrMAC: the header MAC does not match: the header was modified, or the
	// packet is for another node or epoch key.
	ErrMAC = errors.New("sphinx: header MAC mismatch")
	// ErrCommand: the routing commands are malformed.
	ErrCommand = errors.New("sphinx: malformed routing commands")
	// ErrPayloadTag: the payload's zero tag is not zero after decryption: the
	// payload was modified on the way.
	ErrPayloadTag = errors.New("sphinx: payload tag mismatch")
	// ErrSURB: a SURB or SURB decryption token is malformed.
	ErrSURB = errors.New("sphinx: malformed SURB")
)
