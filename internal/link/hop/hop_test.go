package hop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/wire"
)

// pipe is one link as the test's far end sees it: the frames the near end
// wrote, and acknowledgements to give it.
type pipe struct {
	size    int // frame size
	written chan wire.Frame
	toRead  chan wire.Frame
	once    sync.Once
	closed  chan struct{}
}

func newPipe() *pipe {
	return &pipe{size: wire.MaxFrameSize, written: make(chan wire.Frame, 2*MaxUnacked), toRead: make(chan wire.Frame, 16), closed: make(chan struct{})}
}

var errClosed = errors.New("pipe closed")

func (p *pipe) WriteFrames(frames []wire.Frame) error {
	select {
	case <-p.closed:
		return errClosed
	default:
	}
	for _, f := range frames {
		f.Body = append([]byte(nil), f.Body...)
		p.written <- f
	}
	return nil
}

// ReadFrame reads what the far end gave before its link closed first, as
// a socket does.
func (p *pipe) ReadFrame() (wire.Frame, error) {
	select {
	case f := <-p.toRead:
		return f, nil
	default:
	}
	select {
	case f := <-p.toRead:
		return f, nil
	case <-p.closed:
		return wire.Frame{}, errClosed
	}
}

func (p *pipe) FrameSize() int { return p.size }

func (p *pipe) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// next returns the next frame written, within a bound.
func (p *pipe) next(t *testing.T) wire.Frame {
	t.Helper()
	select {
	case f := <-p.written:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame written")
		return wire.Frame{}
	}
}

func (p *pipe) ack(upTo uint64) { p.toRead <- wire.Frame{Type: wire.FrameAck, Seq: upTo} }

// senderFixture runs a Sender whose links are pipes handed out in turn
// and whose backoff waits are reported on lost.
type senderFixture struct {
	s     *Sender
	clock *clock.Fake
	links chan *pipe
	dials chan error // what each dial returns (nil: the next pipe)
	lost  chan time.Duration
	acked chan int
	// frameSize, if set, is the frame size of the links dialled from
	// now on.
	frameSize atomic.Int64
	tooLarge  atomic.Int64
}

func newSenderFixture(t *testing.T, queue int) *senderFixture {
	x := &senderFixture{clock: clock.NewFake(time.Unix(1e9, 0)), links: make(chan *pipe, 8), dials: make(chan error, 8), lost: make(chan time.Duration, 8), acked: make(chan int, 2*MaxUnacked)}
	x.s = NewSender(SenderConfig{
		Queue: queue, Clock: x.clock,
		Dial: func(ctx context.Context) (Conn, error) {
			select {
			case err := <-x.dials:
				if err != nil {
					return nil, err
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			p := newPipe()
			if size := x.frameSize.Load(); size > 0 {
				p.size = int(size)
			}
			x.links <- p
			return p, nil
		},
		Lost:     func(err error, wait time.Duration, _ bool) { x.lost <- wait },
		Acked:    func(n int) { x.acked <- n },
		TooLarge: func(n int) { x.tooLarge.Add(int64(n)) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return x
}

func (x *senderFixture) link(t *testing.T) *pipe {
	t.Helper()
	x.dials <- nil
	select {
	case p := <-x.links:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no link dialled")
		return nil
	}
}

// waitLost returns the backoff of the next lost link and moves the clock
// past it.
func (x *senderFixture) waitLost(t *testing.T) time.Duration {
	t.Helper()
	select {
	case wait := <-x.lost:
		x.clock.Advance(wait)
		return wait
	case <-time.After(10 * time.Second):
		t.Fatal("no link lost")
		return 0
	}
}

func packet(i int) []byte { return []byte(fmt.Sprintf("packet %d", i)) }

// TestSenderResendsWhatWasNotAcknowledged: packets are numbered from 1 on
// each link; when a link fails, what it did not acknowledge goes again on
// the next, first and in order, numbered from 1 again.
func TestSenderResendsWhatWasNotAcknowledged(t *testing.T) {
	x := newSenderFixture(t, 16)
	first := x.link(t)
	for i := range 5 {
		if !x.s.Enqueue(packet(i)) {
			t.Fatal("queue full")
		}
	}
	for i := range 5 {
		f := first.next(t)
		if f.Type != wire.FramePacket || f.Seq != uint64(i+1) || string(f.Body) != string(packet(i)) {
			t.Fatalf("frame %d: %v %d %q", i, f.Type, f.Seq, f.Body)
		}
	}
	first.ack(2)
	first.Close()
	x.waitLost(t)
	second := x.link(t)
	for i := 2; i < 5; i++ {
		f := second.next(t)
		if f.Seq != uint64(i-1) || string(f.Body) != string(packet(i)) {
			t.Fatalf("resent frame %d %q, want %d %q", f.Seq, f.Body, i-1, packet(i))
		}
	}
	x.s.Enqueue(packet(5))
	if f := second.next(t); f.Seq != 4 || string(f.Body) != string(packet(5)) {
		t.Fatalf("new frame %d %q after the resent ones", f.Seq, f.Body)
	}
	second.ack(4)
	x.waitAcked(t, 4)
	held(t, x.s, 0, 0)
}

// held checks what the sender holds.
func held(t *testing.T, s *Sender, queued, unacked int) {
	t.Helper()
	if q, u := s.Held(); q != queued || u != unacked {
		t.Fatalf("held %d queued and %d unacknowledged, want %d and %d", q, u, queued, unacked)
	}
}

// waitAcked waits until the sender has applied acknowledgements of n more
// packets.
func (x *senderFixture) waitAcked(t *testing.T, n int) {
	t.Helper()
	for n > 0 {
		select {
		case k := <-x.acked:
			n -= k
		case <-time.After(10 * time.Second):
			t.Fatalf("%d acknowledgements not applied", n)
		}
	}
}

// TestSenderWindow: no more than MaxUnacked packets are in flight; an
// acknowledgement lets the rest go. Acknowledgements out of range are
// ignored.
func TestSenderWindow(t *testing.T) {
	x := newSenderFixture(t, MaxUnacked+10)
	p := x.link(t)
	for i := range MaxUnacked + 10 {
		x.s.Enqueue(packet(i))
	}
	for range MaxUnacked {
		p.next(t)
	}
	// The window is full (a packet is numbered before it is written): the
	// other 10 wait, in the queue or in the batch being written, depending
	// on when the sender took them.
	if _, u := x.s.Held(); u != MaxUnacked {
		t.Fatalf("%d packets in flight, want the window's %d", u, MaxUnacked)
	}
	select {
	case f := <-p.written:
		t.Fatalf("frame %d written with the window full", f.Seq)
	default:
	}
	p.ack(MaxUnacked + 100) // beyond what was sent: ignored
	p.ack(10)
	for i := range 10 {
		if f := p.next(t); f.Seq != uint64(MaxUnacked+1+i) {
			t.Fatalf("frame %d after the window opened, want %d", f.Seq, MaxUnacked+1+i)
		}
	}
	p.ack(MaxUnacked + 10)
	x.waitAcked(t, MaxUnacked+10)
	held(t, x.s, 0, 0)
}

// TestSenderBackoff: the wait between dials doubles while dialling fails,
// up to its ceiling, and starts again from its least once a link was up.
func TestSenderBackoff(t *testing.T) {
	x := newSenderFixture(t, 1)
	var waits []time.Duration
	for range 9 {
		x.dials <- errors.New("refused")
		waits = append(waits, x.waitLost(t))
	}
	for i, w := range waits {
		base := min(leastBackoff<<i, mostBackoff)
		if w < base || w > base+base/2 {
			t.Fatalf("wait %d is %v, want %v to %v", i, w, base, base+base/2)
		}
	}
	p := x.link(t)
	p.Close()
	if w := x.waitLost(t); w > leastBackoff+leastBackoff/2 {
		t.Fatalf("after a link was up the wait is %v, want the least again", w)
	}
}

// TestSenderRefusesOtherFrames: a next hop that sends anything but
// acknowledgements loses its link, and what was in flight goes again.
func TestSenderRefusesOtherFrames(t *testing.T) {
	x := newSenderFixture(t, 4)
	p := x.link(t)
	x.s.Enqueue(packet(0))
	p.next(t)
	p.toRead <- wire.Frame{Type: wire.FramePacket, Seq: 1}
	x.waitLost(t)
	again := x.link(t)
	if f := again.next(t); f.Seq != 1 || string(f.Body) != string(packet(0)) {
		t.Fatalf("resent %d %q", f.Seq, f.Body)
	}
}

// TestReceiverAcknowledgesInOrder: frames dealt with out of order are
// acknowledged only up to the first one still open; an acknowledgement is
// written once however often it is asked for.
func TestReceiverAcknowledgesInOrder(t *testing.T) {
	r := NewReceiver()
	p := newPipe()
	done := make(chan struct{})
	written := make(chan error, 1)
	go func() { written <- r.WriteAcks(p, done) }()
	for seq := uint64(1); seq <= 4; seq++ {
		if err := r.Arrived(seq); err != nil {
			t.Fatal(err)
		}
	}
	r.Complete(3)
	r.Complete(2)
	r.Acknowledge() // nothing to acknowledge: frame 1 is open
	r.Complete(1)
	r.Acknowledge()
	if f := p.next(t); f.Type != wire.FrameAck || f.Seq != 3 {
		t.Fatalf("acknowledged %v %d, want FrameAck 3", f.Type, f.Seq)
	}
	r.Acknowledge()
	r.Complete(4)
	r.Acknowledge()
	if f := p.next(t); f.Seq != 4 {
		t.Fatalf("acknowledged %d, want 4 (and no repeat of 3)", f.Seq)
	}
	close(done)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if len(p.written) != 0 {
		t.Fatalf("%d more acknowledgements written", len(p.written))
	}
}

// TestReceiverRefusesOutOfSequence: a frame number skipped or repeated is
// an error; a failed ack write ends WriteAcks with its error.
func TestReceiverRefusesOutOfSequence(t *testing.T) {
	r := NewReceiver()
	if err := r.Arrived(2); err == nil {
		t.Fatal("frame 2 first was taken")
	}
	if err := r.Arrived(1); err != nil {
		t.Fatal(err)
	}
	if err := r.Arrived(1); err == nil {
		t.Fatal("frame 1 twice was taken")
	}
	p := newPipe()
	p.Close()
	r.Complete(1)
	r.Acknowledge()
	if err := r.WriteAcks(p, make(chan struct{})); !errors.Is(err, errClosed) {
		t.Fatalf("WriteAcks on a closed link: %v", err)
	}
}

// TestSenderRedialsForLargerPackets: a packet larger than the link's
// frames (the network moved to a larger packet format) closes the link at
// once, without backoff, keeping the packet; the next link, dialled for
// the new size, carries it after what the old link did not acknowledge. A
// packet that even that link cannot carry is dropped and counted, and the
// packets after it go on.
func TestSenderRedialsForLargerPackets(t *testing.T) {
	x := newSenderFixture(t, 16)
	x.frameSize.Store(int64(wire.FrameOverhead + 100))
	small := x.link(t)
	x.s.Enqueue(make([]byte, 50))
	if f := small.next(t); f.Seq != 1 || len(f.Body) != 50 {
		t.Fatalf("first frame: %d, %d bytes", f.Seq, len(f.Body))
	}
	x.frameSize.Store(int64(wire.FrameOverhead + 300))
	x.s.Enqueue(make([]byte, 200))
	if wait := x.waitLost(t); wait != 0 {
		t.Fatalf("a link too small for a packet waited %v before dialling again, want 0", wait)
	}
	select {
	case <-small.closed:
	default:
		t.Fatal("the link too small for a packet is still open")
	}
	large := x.link(t)
	for i, want := range []int{50, 200} {
		if f := large.next(t); f.Seq != uint64(i+1) || len(f.Body) != want {
			t.Fatalf("frame %d on the larger link: seq %d, %d bytes; want %d bytes", i+1, f.Seq, len(f.Body), want)
		}
	}
	large.ack(2)
	x.waitAcked(t, 2)

	x.s.Enqueue(make([]byte, 400))
	x.waitLost(t)
	again := x.link(t)
	x.s.Enqueue(make([]byte, 60))
	if f := again.next(t); f.Seq != 1 || len(f.Body) != 60 {
		t.Fatalf("after a packet no link carries: frame %d of %d bytes, want the next packet", f.Seq, len(f.Body))
	}
	if got := x.tooLarge.Load(); got != 1 {
		t.Fatalf("%d packets counted too large, want 1", got)
	}
	again.ack(1)
	x.waitAcked(t, 1)
	held(t, x.s, 0, 0)
}
