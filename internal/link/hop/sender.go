package hop

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/wire"
)

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Queue is how many packets may wait for the link.
	Queue int
	// Dial opens and authenticates a link to the next hop.
	Dial func(ctx context.Context) (Conn, error)
	// Clock times the reconnection backoff; nil is the real clock.
	Clock clock.Clock
	// Lost, if set, is told of each link that failed (wasUp) or could
	// not be made, and how long the Sender waits before the next.
	Lost func(err error, wait time.Duration, wasUp bool)
	// Up, if set, is told of each link made.
	Up func()
	// Wrote, if set, counts the packet frames written; Acked those the
	// next hop acknowledged (called from the link's ack reader).
	Wrote func(frames int)
	Acked func(frames int)
	// TooLarge, if set, counts the packets dropped because a link made
	// for them could not carry them (see Sender).
	TooLarge func(packets int)
}

// Backoff between links: it doubles while dialling fails and starts again
// from its least once a link was up, so that a path that resets
// connections every few seconds costs a reconnection each time, not the
// ceiling (found by e2e/TestUnreliableLinks).
const (
	leastBackoff = 50 * time.Millisecond
	mostBackoff  = 5 * time.Second
)

// Sender sends packets to one next hop. Its methods may be called from
// any goroutine; Run is called once.
//
// A link's frames have the size its Dial chose. When the network changes
// its packet format, larger packets may come while the link of the old
// size is up: the Sender then closes that link, keeping the packet, and
// dials again at once, and Dial chooses the new size. A packet that the
// link made for it still cannot carry is dropped (TooLarge): no link would.
type Sender struct {
	cfg   SenderConfig
	queue chan []byte
	// redialled is set while the packets a link too small for them left
	// are sent again on the link dialled for them; used by Run's
	// goroutine only.
	redialled bool

	mu      sync.Mutex
	unacked [][]byte // sent on the current link, not yet acknowledged; guarded by mu
	sent    uint64   // packet frames sent on the current link; guarded by mu
	acked   uint64   // packet frames acknowledged on the current link; guarded by mu
}

// NewSender returns a Sender; Run makes its links.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Sender{cfg: cfg, queue: make(chan []byte, cfg.Queue)}
}

// Enqueue queues a packet for the next hop; it reports false, without
// blocking, if the queue is full.
func (s *Sender) Enqueue(packet []byte) bool {
	select {
	case s.queue <- packet:
		return true
	default:
		return false
	}
}

// Held counts the packets queued and those sent but not yet acknowledged.
func (s *Sender) Held() (queued, unacked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), len(s.unacked)
}

// Run keeps a link to the next hop until ctx is done, making a new one
// with backoff each time one fails.
func (s *Sender) Run(ctx context.Context) {
	backoff := leastBackoff
	for ctx.Err() == nil {
		up, err := s.link(ctx)
		if ctx.Err() != nil {
			return
		}
		if up {
			backoff = leastBackoff
		}
		s.redialled = errors.Is(err, errLinkTooSmall)
		if s.redialled {
			if s.cfg.Lost != nil {
				s.cfg.Lost(err, 0, up)
			}
			continue
		}
		wait := backoff + rand.N(backoff/2+1)
		timer := s.cfg.Clock.NewTimerAt(s.cfg.Clock.Now().Add(wait))
		if s.cfg.Lost != nil {
			s.cfg.Lost(err, wait, up)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		backoff = min(2*backoff, mostBackoff)
	}
}

// link dials the next hop and serves the link until it fails or ctx is
// done; up reports whether the link was made.
func (s *Sender) link(ctx context.Context) (up bool, err error) {
	c, err := s.cfg.Dial(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if s.cfg.Up != nil {
		s.cfg.Up()
	}
	return true, s.serve(ctx, c)
}

// serve sends again on a new link what the last one did not acknowledge,
// then sends from the queue until the link fails or ctx is done.
func (s *Sender) serve(ctx context.Context, c Conn) error {
	s.mu.Lock()
	resend := s.unacked
	s.unacked, s.sent, s.acked = nil, 0, 0
	s.mu.Unlock()

	w := &window{s: s, c: c, ctx: ctx, failed: make(chan error, 1), acked: make(chan struct{}, 1), frames: make([]wire.Frame, 0, MaxBatch)}
	go func() { w.failed <- s.readAcks(c, w.acked) }()
	for len(resend) > 0 {
		k := min(len(resend), MaxBatch)
		if err := w.send(resend[:k]); err != nil {
			s.keep(resend[k:])
			return err
		}
		resend = resend[k:]
	}
	// What the link too small left is sent (or dropped): later packets
	// that do not fit end this link as they would any other.
	s.redialled = false
	batch := make([][]byte, 0, MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-w.failed:
			return err
		case packet := <-s.queue:
			batch = s.fill(append(batch[:0], packet))
			if err := w.send(batch); err != nil {
				return err
			}
		}
	}
}

// fill adds to batch what else is queued, up to MaxBatch packets.
func (s *Sender) fill(batch [][]byte) [][]byte {
	for len(batch) < MaxBatch {
		select {
		case packet := <-s.queue:
			batch = append(batch, packet)
		default:
			return batch
		}
	}
	return batch
}

// keep holds packets not sent on a failed link for the next one.
func (s *Sender) keep(packets [][]byte) {
	s.mu.Lock()
	s.unacked = append(s.unacked, packets...)
	s.mu.Unlock()
}

// readAcks applies the next hop's acknowledgements until the link fails.
func (s *Sender) readAcks(c Conn, acked chan<- struct{}) error {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			c.Close()
			return err
		}
		if f.Type != wire.FrameAck {
			c.Close()
			return fmt.Errorf("hop: next hop sent a %s frame", f.Type)
		}
		n := 0
		s.mu.Lock()
		if f.Seq > s.acked && f.Seq <= s.sent {
			n = int(f.Seq - s.acked)
			clear(s.unacked[:n])
			s.unacked = s.unacked[n:]
			s.acked = f.Seq
		}
		s.mu.Unlock()
		if n > 0 && s.cfg.Acked != nil {
			s.cfg.Acked(n)
		}
		select {
		case acked <- struct{}{}:
		default:
		}
	}
}

// window writes packets on one link, as few system calls as the window of
// unacknowledged packets allows, numbering each and keeping it until it is
// acknowledged.
type window struct {
	s      *Sender
	c      Conn
	ctx    context.Context
	failed chan error    // the ack reader's end
	acked  chan struct{} // an acknowledgement arrived
	frames []wire.Frame  // numbered, not yet written
}

// send numbers and writes packets; when the window is full it writes what
// it has and waits for an acknowledgement. On a failure, the packets not
// yet numbered are kept for the next link (those numbered are kept
// already, unacknowledged).
func (w *window) send(packets [][]byte) error {
	for i, packet := range packets {
		if !w.fits(packet) {
			if w.s.redialled {
				if w.s.cfg.TooLarge != nil {
					w.s.cfg.TooLarge(1)
				}
				continue
			}
			err := w.flush()
			w.s.keep(packets[i:])
			if err != nil {
				return err
			}
			return errLinkTooSmall
		}
		for !w.number(packet) {
			err := w.flush()
			if err == nil {
				err = w.waitAck()
			}
			if err != nil {
				w.s.keep(packets[i:])
				return err
			}
		}
	}
	return w.flush()
}

// errLinkTooSmall ends a link whose frames cannot carry a packet to send.
var errLinkTooSmall = errors.New("hop: a packet is larger than the link's frames; dialling again for larger ones")

// fits reports whether the link's frames carry packet.
func (w *window) fits(packet []byte) bool {
	return len(packet) <= w.c.FrameSize()-wire.FrameOverhead
}

// number gives the packet the link's next sequence number, if the window
// has room.
func (w *window) number(packet []byte) bool {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unacked) >= MaxUnacked {
		return false
	}
	s.sent++
	s.unacked = append(s.unacked, packet)
	w.frames = append(w.frames, wire.Frame{Type: wire.FramePacket, Seq: s.sent, Body: packet})
	return true
}

// flush writes the numbered frames.
func (w *window) flush() error {
	if len(w.frames) == 0 {
		return nil
	}
	err := w.c.WriteFrames(w.frames)
	if err == nil && w.s.cfg.Wrote != nil {
		w.s.cfg.Wrote(len(w.frames))
	}
	clear(w.frames)
	w.frames = w.frames[:0]
	return err
}

// waitAck waits for an acknowledgement, the link's failure or the end.
func (w *window) waitAck() error {
	select {
	case <-w.acked:
		return nil
	case err := <-w.failed:
		return err
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}
