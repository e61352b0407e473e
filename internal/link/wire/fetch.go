package wire

import (
	"encoding/binary"
	"fmt"
)

// Mailbox fetching between a client and its provider. A client sends one
// FrameFetch on the provider's fixed schedule, whatever it expects; the
// provider answers with exactly FetchBatch FrameFetchReply frames, each
// holding one packet or none, so neither the request nor the reply shows
// whether anything arrived. The request acknowledges the packets of the
// previous reply, and only then does the provider delete them.

// FetchBatch is the number of reply frames to every fetch.
const FetchBatch = 4

// MaxFetchesPerPoll is how many fetches a client sends in one poll
// interval at most: the scheduled one, then more at once while the reply
// says packets remain, so that a backlog (after a time offline, or one a
// flooder built) drains at up to MaxFetchesPerPoll × FetchBatch packets a
// poll interval. Those extra fetches show a link observer that a backlog
// exists, which whoever built it knows already; when none exists the
// schedule is the fixed one. Providers size their limits on it.
const MaxFetchesPerPoll = 16

// fetch message versions.
const fetchVersion = 1

// FetchRequest is the body of a FrameFetch.
type FetchRequest struct {
	// AckUpTo acknowledges every packet of the mailbox with a sequence
	// number up to and including it; 0 acknowledges nothing.
	AckUpTo uint64
}

// fetchRequestLength is the encoded length of a FetchRequest: version, ack.
const fetchRequestLength = 1 + 8

// MarshalBinary encodes the request.
func (r FetchRequest) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, fetchRequestLength)
	b = append(b, fetchVersion)
	return binary.BigEndian.AppendUint64(b, r.AckUpTo), nil
}

// UnmarshalBinary decodes a request strictly.
func (r *FetchRequest) UnmarshalBinary(b []byte) error {
	if len(b) != fetchRequestLength {
		return fmt.Errorf("%w: fetch request of %d bytes, want %d", ErrMalformedFrame, len(b), fetchRequestLength)
	}
	if b[0] != fetchVersion {
		return fmt.Errorf("%w: fetch request version %d, want %d", ErrMalformedFrame, b[0], fetchVersion)
	}
	r.AckUpTo = binary.BigEndian.Uint64(b[1:])
	return nil
}

// FetchReply is the body of one FrameFetchReply.
type FetchReply struct {
	// Index is the frame's place in the batch, 0 to FetchBatch−1.
	Index uint8
	// Seq is the mailbox sequence number of Packet, to acknowledge; 0 when
	// the frame holds no packet.
	Seq uint64
	// Remaining is how many packets are left in the mailbox after this
	// batch (so a client with a backlog can fetch sooner).
	Remaining uint32
	// Packet is the stored packet, or empty.
	Packet []byte
}

// fetchReplyOverhead is the encoded length of a FetchReply besides its
// packet: version, index, seq, remaining, packet length.
const fetchReplyOverhead = 1 + 1 + 8 + 4 + 2

// MaxFetchPacket is the largest packet a reply frame of frameSize carries.
func MaxFetchPacket(frameSize int) int { return frameSize - FrameOverhead - fetchReplyOverhead }

// MarshalBinary encodes the reply. (The frame pads it to the link's size.)
func (r FetchReply) MarshalBinary() ([]byte, error) {
	if r.Index >= FetchBatch || len(r.Packet) > 0xffff || (r.Seq == 0) != (len(r.Packet) == 0) {
		return nil, fmt.Errorf("wire: invalid fetch reply (index %d, seq %d, %d-byte packet)", r.Index, r.Seq, len(r.Packet))
	}
	b := make([]byte, 0, fetchReplyOverhead+len(r.Packet))
	b = append(b, fetchVersion, r.Index)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint32(b, r.Remaining)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Packet)))
	return append(b, r.Packet...), nil
}

// UnmarshalBinary decodes a reply strictly; Packet aliases b.
func (r *FetchReply) UnmarshalBinary(b []byte) error {
	if len(b) < fetchReplyOverhead {
		return fmt.Errorf("%w: fetch reply of %d bytes", ErrMalformedFrame, len(b))
	}
	if b[0] != fetchVersion {
		return fmt.Errorf("%w: fetch reply version %d, want %d", ErrMalformedFrame, b[0], fetchVersion)
	}
	out := FetchReply{
		Index:     b[1],
		Seq:       binary.BigEndian.Uint64(b[2:10]),
		Remaining: binary.BigEndian.Uint32(b[10:14]),
	}
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) != fetchReplyOverhead+n {
		return fmt.Errorf("%w: fetch reply says %d packet bytes, has %d", ErrMalformedFrame, n, len(b)-fetchReplyOverhead)
	}
	if out.Index >= FetchBatch || (out.Seq == 0) != (n == 0) {
		return fmt.Errorf("%w: fetch reply index %d, seq %d with %d packet bytes", ErrMalformedFrame, out.Index, out.Seq, n)
	}
	out.Packet = b[fetchReplyOverhead:]
	*r = out
	return nil
}

// FrameSizeFor is the frame size of links that carry packets of
// packetLength bytes, both as FramePacket bodies and in fetch replies.
func FrameSizeFor(packetLength int) int { return FrameOverhead + fetchReplyOverhead + packetLength }

// Retention is the body of a FrameRetention: the longest a provider should
// keep the client's unfetched packets, for disappearing messages; 0 asks
// for the provider's own retention. A provider never keeps packets longer
// than its own retention, whatever a client asks.
type Retention struct {
	Seconds uint64
}

// retentionLength is the encoded length: version, seconds.
const retentionLength = 1 + 8

// MarshalBinary encodes the request.
func (r Retention) MarshalBinary() ([]byte, error) {
	return binary.BigEndian.AppendUint64([]byte{fetchVersion}, r.Seconds), nil
}

// UnmarshalBinary decodes a request strictly.
func (r *Retention) UnmarshalBinary(b []byte) error {
	if len(b) != retentionLength {
		return fmt.Errorf("%w: retention request of %d bytes, want %d", ErrMalformedFrame, len(b), retentionLength)
	}
	if b[0] != fetchVersion {
		return fmt.Errorf("%w: retention request version %d, want %d", ErrMalformedFrame, b[0], fetchVersion)
	}
	r.Seconds = binary.BigEndian.Uint64(b[1:])
	if r.Seconds > 10*365*24*3600 {
		return fmt.Errorf("%w: a retention of %d seconds", ErrMalformedFrame, r.Seconds)
	}
	return nil
}
