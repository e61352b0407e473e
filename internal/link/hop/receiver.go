package hop

import (
	"fmt"
	"sync"

	"github.com/backchannel/backchannel/internal/link/wire"
)

// Receiver is one inbound link's half of the protocol. Arrived is called
// by the link's reader; Complete and Acknowledge by whoever deals with the
// packets, from any goroutine; WriteAcks runs in a goroutine of its own.
type Receiver struct {
	arrived uint64 // the last packet frame's number; the reader's alone

	mu    sync.Mutex
	next  uint64          // lowest frame not yet dealt with; guarded by mu
	done  map[uint64]bool // dealt with, above next; guarded by mu
	acked uint64          // last acknowledgement written; guarded by mu
	due   chan struct{}   // wakes WriteAcks
}

// NewReceiver returns the Receiver of a new link.
func NewReceiver() *Receiver {
	return &Receiver{next: 1, done: map[uint64]bool{}, due: make(chan struct{}, 1)}
}

// Arrived checks that a packet frame carries the next number: frames out of
// sequence mean a broken or hostile peer, whose link should be closed.
func (r *Receiver) Arrived(seq uint64) error {
	if seq != r.arrived+1 {
		return fmt.Errorf("hop: packet frame %d where %d was due", seq, r.arrived+1)
	}
	r.arrived = seq
	return nil
}

// Complete marks packet frame seq as dealt with. Acknowledge then writes
// the acknowledgement: one for many completions.
func (r *Receiver) Complete(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[seq] = true
	for r.done[r.next] {
		delete(r.done, r.next)
		r.next++
	}
}

// Acknowledge asks WriteAcks to acknowledge what is complete; it never
// blocks.
func (r *Receiver) Acknowledge() {
	select {
	case r.due <- struct{}{}:
	default: // already asked; the writer reads the latest state
	}
}

// WriteAcks writes the acknowledgements Acknowledge asks for on c, until
// done is closed or a write fails (whose error it returns: the peer
// stopped reading, say).
func (r *Receiver) WriteAcks(c Conn, done <-chan struct{}) error {
	frame := make([]wire.Frame, 1)
	for {
		select {
		case <-r.due:
		case <-done:
			return nil
		}
		r.mu.Lock()
		upTo := r.next - 1
		fresh := upTo != r.acked
		r.acked = upTo
		r.mu.Unlock()
		if !fresh {
			continue
		}
		frame[0] = wire.Frame{Type: wire.FrameAck, Seq: upTo}
		if err := c.WriteFrames(frame); err != nil {
			return err
		}
	}
}
