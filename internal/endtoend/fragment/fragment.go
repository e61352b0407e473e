// Package fragment cuts a message into pieces that each fit one Sphinx
// payload, and puts them back together at the other end, delivering each
// message once however its pieces arrive: late, reordered or repeated (the
// sender retransmits until acknowledged).
//
// A fragment is
//
//	u8 version | message ID [16] | u16 index | u16 count | u32 message length | body
//
// and every body but the last fills the capacity it was cut for, so a
// fragment's size shows nothing about the message but its count of pieces.
// Padding fragments to the full payload is the caller's (the Sphinx layer
// pads). It does not encrypt: fragments travel inside session messages.
package fragment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

const (
	version = 1
	// IDSize is the length of a message ID.
	IDSize = 16
	// HeaderSize is what each fragment spends besides its body.
	HeaderSize = 1 + IDSize + 2 + 2 + 4
	// MaxMessageSize bounds a message (and so what a reassembler holds for
	// one).
	MaxMessageSize = 16 << 20
)

// ID identifies a message.
type ID [IDSize]byte

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("fragment: malformed fragment")

// Split cuts message into fragments of at most capacity bytes each
// (header included).
func Split(id ID, message []byte, capacity int) ([][]byte, error) {
	room := capacity - HeaderSize
	if room < 1 {
		return nil, fmt.Errorf("fragment: capacity %d leaves no room after the %d-byte header", capacity, HeaderSize)
	}
	if len(message) > MaxMessageSize {
		return nil, fmt.Errorf("fragment: message of %d bytes, at most %d", len(message), MaxMessageSize)
	}
	count := max(1, (len(message)+room-1)/room)
	if count > 0xffff {
		return nil, fmt.Errorf("fragment: a %d-byte message needs %d fragments of %d bytes, at most 65535", len(message), count, capacity)
	}
	out := make([][]byte, count)
	for i := range out {
		body := message[min(i*room, len(message)):min((i+1)*room, len(message))]
		f := make([]byte, 0, HeaderSize+len(body))
		f = append(f, version)
		f = append(f, id[:]...)
		f = binary.BigEndian.AppendUint16(f, uint16(i))
		f = binary.BigEndian.AppendUint16(f, uint16(count))
		f = binary.BigEndian.AppendUint32(f, uint32(len(message)))
		out[i] = append(f, body...)
	}
	return out, nil
}

// Fragment is a decoded fragment; Body aliases the input.
type Fragment struct {
	ID     ID
	Index  int
	Count  int
	Length int
	Body   []byte
}

// Parse decodes a fragment strictly.
func Parse(b []byte) (Fragment, error) {
	var f Fragment
	if len(b) < HeaderSize || b[0] != version {
		return f, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	copy(f.ID[:], b[1:1+IDSize])
	f.Index = int(binary.BigEndian.Uint16(b[17:19]))
	f.Count = int(binary.BigEndian.Uint16(b[19:21]))
	f.Length = int(binary.BigEndian.Uint32(b[21:25]))
	f.Body = b[HeaderSize:]
	if f.Count < 1 || f.Index >= f.Count || f.Length > MaxMessageSize || len(f.Body) > f.Length {
		return f, fmt.Errorf("%w: fragment %d of %d of a %d-byte message with %d bytes", ErrMalformed, f.Index, f.Count, f.Length, len(f.Body))
	}
	return f, nil
}

// Reassembler puts messages back together. It holds at most MaxPending
// incomplete messages (the oldest is dropped first; the sender's
// retransmission brings it back), forgets incomplete ones after MaxAge, and
// remembers the IDs of the last RememberDone delivered messages so a late
// repeat is not delivered twice. Zero fields take defaults: 64 pending
// messages, one hour, 4,096 remembered IDs. It is not safe for concurrent
// use.
type Reassembler struct {
	MaxPending   int
	MaxAge       time.Duration
	RememberDone int

	pending map[ID]*partial
	order   []ID // pending, oldest first
	done    map[ID]bool
	doneLog []ID
}

type partial struct {
	count, length int
	got           int
	bodies        [][]byte
	started       time.Time
}

// Add takes a fragment received at now and, when this fragment completes its
// message, returns the message with complete set. A repeat of a delivered
// message, or of a fragment already held, completes nothing.
func (r *Reassembler) Add(b []byte, now time.Time) (id ID, message []byte, complete bool, err error) {
	f, err := Parse(b)
	if err != nil {
		return ID{}, nil, false, err
	}
	if r.pending == nil {
		r.pending, r.done = map[ID]*partial{}, map[ID]bool{}
		if r.MaxPending == 0 {
			r.MaxPending = 64
		}
		if r.MaxAge == 0 {
			r.MaxAge = time.Hour
		}
		if r.RememberDone == 0 {
			r.RememberDone = 4096
		}
	}
	r.expire(now)
	if r.done[f.ID] {
		return ID{}, nil, false, nil
	}
	p := r.pending[f.ID]
	if p == nil {
		p = &partial{count: f.Count, length: f.Length, bodies: make([][]byte, f.Count), started: now}
		r.pending[f.ID] = p
		r.order = append(r.order, f.ID)
		if len(r.order) > r.MaxPending {
			delete(r.pending, r.order[0])
			r.order = r.order[1:]
		}
	} else if p.count != f.Count || p.length != f.Length {
		return ID{}, nil, false, fmt.Errorf("%w: fragment disagrees with its message's others", ErrMalformed)
	}
	if p.bodies[f.Index] != nil {
		return ID{}, nil, false, nil
	}
	p.bodies[f.Index] = append([]byte{}, f.Body...)
	p.got++
	if p.got < p.count {
		return ID{}, nil, false, nil
	}
	message = make([]byte, 0, p.length)
	for _, body := range p.bodies {
		message = append(message, body...)
	}
	r.finish(f.ID)
	if len(message) != p.length {
		return ID{}, nil, false, fmt.Errorf("%w: message of %d bytes, announced %d", ErrMalformed, len(message), p.length)
	}
	return f.ID, message, true, nil
}

func (r *Reassembler) finish(id ID) {
	delete(r.pending, id)
	for i, o := range r.order {
		if o == id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	r.done[id] = true
	r.doneLog = append(r.doneLog, id)
	if len(r.doneLog) > r.RememberDone {
		delete(r.done, r.doneLog[0])
		r.doneLog = r.doneLog[1:]
	}
}

func (r *Reassembler) expire(now time.Time) {
	for len(r.order) > 0 {
		p := r.pending[r.order[0]]
		if now.Sub(p.started) <= r.MaxAge {
			return
		}
		delete(r.pending, r.order[0])
		r.order = r.order[1:]
	}
}

// Pending is the number of incomplete messages held.
func (r *Reassembler) Pending() int { return len(r.pending) }
