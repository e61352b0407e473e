// Package hop is the hop-by-hop reliability of the links between nodes (and
// from a client to its provider): the receiving node acknowledges packet
// frames in order, FrameAck(n) once frames 1..n have all been dealt with
// (forwarded, stored or dropped: a node never asks for a packet again), and
// the sending node keeps every packet until it is acknowledged, sending
// again on a new link what the last one did not acknowledge.
//
// A [Sender] is one next hop's half: a bounded queue, a window of
// unacknowledged packets, and a loop that keeps a link up, reconnecting
// with backoff. A [Receiver] is one inbound link's half: it checks that
// packet frames come in sequence and writes the acknowledgements from a
// goroutine of the link's own, so that a peer that does not read them
// stalls nothing but its link.
//
// It moves opaque packets over a [Conn]; dialling, authenticating and
// judging the packets are the node's. A packet may arrive twice (sent
// again after a link failed before its acknowledgement): the replay filter
// of the next hop drops the second.
package hop

import "github.com/backchannel/backchannel/internal/link/wire"

// Conn is a link that carries frames: a *wire.Conn, or a pipe in tests.
type Conn interface {
	WriteFrames(frames []wire.Frame) error
	ReadFrame() (wire.Frame, error)
	Close() error
	// FrameSize is the size of every frame on the link (see
	// [wire.Conn.FrameSize]).
	FrameSize() int
}

// Limits of a Sender.
const (
	// MaxUnacked bounds the packets a link has in flight.
	MaxUnacked = 4096
	// MaxBatch is the most frames written with one system call.
	MaxBatch = 32
)
