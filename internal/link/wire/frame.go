package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FrameType says what a frame carries.
type FrameType uint8

// Frame types of link protocol version 1.
const (
	// FramePacket carries one Sphinx packet; Seq numbers it for FrameAck.
	FramePacket FrameType = 1
	// FrameAck acknowledges every FramePacket up to and including Seq: the
	// receiver has taken responsibility for them (logged the replay tag, or
	// stored the packet durably), and the sender may forget them.
	FrameAck FrameType = 2
	// FrameFetch is a client's mailbox fetch request to its provider.
	FrameFetch FrameType = 3
	// FrameFetchReply is a provider's reply to a fetch.
	FrameFetchReply FrameType = 4
	// FrameNoOp carries nothing; it keeps a link's traffic regular.
	FrameNoOp FrameType = 5
	// FrameDocumentRequest is a client's request for the current (or the
	// next) signed network document; see DocumentNext.
	FrameDocumentRequest FrameType = 6
	// FrameDocumentChunk carries part of the signed network document (see
	// DocumentChunk).
	FrameDocumentChunk FrameType = 7
	// FrameRetention is a client's request that its provider keep unfetched
	// packets no longer than a given time (see Retention).
	FrameRetention FrameType = 8
)

func (t FrameType) String() string {
	switch t {
	case FramePacket:
		return "packet"
	case FrameAck:
		return "ack"
	case FrameFetch:
		return "fetch"
	case FrameFetchReply:
		return "fetch-reply"
	case FrameNoOp:
		return "no-op"
	case FrameDocumentRequest:
		return "document-request"
	case FrameDocumentChunk:
		return "document-chunk"
	case FrameRetention:
		return "retention"
	}
	return fmt.Sprintf("frame-type(%d)", uint8(t))
}

// Frame plaintext layout, version 1, always exactly the link's frame size:
//
//	u8 version | u8 type | u64 seq | u32 body length | body | zero padding
const (
	frameVersion = 1
	// FrameOverhead is the plaintext bytes a frame spends besides its body.
	FrameOverhead = 1 + 1 + 8 + 4
	// MinFrameSize and MaxFrameSize bound a link's frame size.
	MinFrameSize = FrameOverhead + 1
	MaxFrameSize = 65535 - tagSize
	tagSize      = 16 // ChaCha20-Poly1305 tag
)

// ErrMalformedFrame is wrapped by every frame decoding error.
var ErrMalformedFrame = errors.New("wire: malformed frame")

// Frame is one decoded frame. Body aliases the buffer it was decoded from.
type Frame struct {
	Type FrameType
	Seq  uint64
	Body []byte
}

// appendFrame encodes f padded to size bytes.
func appendFrame(dst []byte, f Frame, size int) ([]byte, error) {
	if len(f.Body) > size-FrameOverhead {
		return nil, fmt.Errorf("wire: %s frame body of %d bytes, at most %d", f.Type, len(f.Body), size-FrameOverhead)
	}
	if !f.Type.valid() {
		return nil, fmt.Errorf("wire: cannot send %s", f.Type)
	}
	start := len(dst)
	dst = append(dst, frameVersion, byte(f.Type))
	dst = binary.BigEndian.AppendUint64(dst, f.Seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Body)))
	dst = append(dst, f.Body...)
	return append(dst, make([]byte, size-(len(dst)-start))...), nil
}

func (t FrameType) valid() bool { return t >= FramePacket && t <= FrameRetention }

// ParseFrame decodes a frame's plaintext strictly: known version and type,
// a body that fits, and zero padding.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < FrameOverhead {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrMalformedFrame, len(b))
	}
	if b[0] != frameVersion {
		return Frame{}, fmt.Errorf("%w: version %d, want %d", ErrMalformedFrame, b[0], frameVersion)
	}
	f := Frame{Type: FrameType(b[1]), Seq: binary.BigEndian.Uint64(b[2:10])}
	if !f.Type.valid() {
		return Frame{}, fmt.Errorf("%w: unknown type %d", ErrMalformedFrame, b[1])
	}
	n := binary.BigEndian.Uint32(b[10:14])
	rest := b[FrameOverhead:]
	if uint64(n) > uint64(len(rest)) {
		return Frame{}, fmt.Errorf("%w: body of %d bytes in a %d-byte frame", ErrMalformedFrame, n, len(b))
	}
	f.Body = rest[:n]
	for _, x := range rest[n:] {
		if x != 0 {
			return Frame{}, fmt.Errorf("%w: non-zero padding", ErrMalformedFrame)
		}
	}
	return f, nil
}
