package client

import (
	"math/rand/v2"
	"time"

	"github.com/backchannel/backchannel/internal/pki/directory"
)

// event is what the sending schedule asks for.
type event int

const (
	// evSend is a send slot: the next ack or fragment that is due, or a
	// drop packet when none is.
	evSend event = iota
	// evLoop is a loop cover packet.
	evLoop
	// evDrop is a drop cover packet.
	evDrop
	eventCount
)

func (e event) String() string {
	return [...]string{"send", "loop", "drop"}[e]
}

// schedule is the client's sending schedule: three independent Poisson
// processes (send slots, loops, drops) at the network document's rates, as
// Loopix has them. Their sum is a Poisson process too, whose rate does not
// depend on whether the user has anything to send.
type schedule struct {
	rng   *rand.Rand
	rates [eventCount]float64
	next  [eventCount]time.Time // zero: never (rate 0)
}

func newSchedule(rng *rand.Rand, p directory.Parameters, now time.Time) *schedule {
	s := &schedule{rng: rng, rates: [eventCount]float64{p.SendRate, p.LoopRate, p.DropRate}}
	for e := range eventCount {
		s.next[e] = s.after(e, now)
	}
	return s
}

// after draws the next time of stream e after t: an exponential gap of
// mean 1/rate.
func (s *schedule) after(e event, t time.Time) time.Time {
	if s.rates[e] <= 0 {
		return time.Time{}
	}
	return t.Add(time.Duration(s.rng.ExpFloat64() / s.rates[e] * float64(time.Second)))
}

// pop returns the earliest event and when it is due, and draws the next
// one of its stream. ok is false if every rate is zero.
func (s *schedule) pop() (e event, at time.Time, ok bool) {
	for i := range eventCount {
		if s.next[i].IsZero() {
			continue
		}
		if !ok || s.next[i].Before(at) {
			e, at, ok = i, s.next[i], true
		}
	}
	if ok {
		s.next[e] = s.after(e, at)
	}
	return e, at, ok
}
