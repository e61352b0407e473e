package client

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// recordingLink records what the client sends, and when.
type recordingLink struct {
	clock *clock.Fake
	times []time.Time
	sizes []int
}

func (l *recordingLink) Send(p []byte) (uint64, error) {
	l.times = append(l.times, l.clock.Now())
	l.sizes = append(l.sizes, len(p))
	return uint64(len(l.times)), nil
}
func (l *recordingLink) Fetch(context.Context) ([]clientlink.Fetched, int, error) { return nil, 0, nil }
func (l *recordingLink) FetchDocument(context.Context, bool) ([]byte, error)      { return nil, nil }
func (l *recordingLink) Close() error                                             { return nil }

// shapeRun is one simulated run of a client's sending schedule on a fake
// clock: the packets it sends, with their times and sizes.
type shapeRun struct {
	times []time.Time
	sizes []int
}

// gaps returns the times between consecutive packets, in seconds.
func (r shapeRun) gaps() []float64 {
	out := make([]float64, 0, len(r.times)-1)
	for i := 1; i < len(r.times); i++ {
		out = append(out, r.times[i].Sub(r.times[i-1]).Seconds())
	}
	return out
}

// simulate runs a client's schedule on a fake clock until it has sent
// packets packets. bursts gives when the user queues messages (burst i at
// bursts[i], perBurst messages each). With control set, the client is the
// control: it sends each queued message's fragments at once, on top of the
// cover traffic, as a naive scheduler would.
func simulate(t *testing.T, seed byte, packets int, bursts []time.Duration, perBurst int, control bool) shapeRun {
	t.Helper()
	pair := newOfflinePair(t, offline{seed: seed, mixesPerLayer: 2, scheduleSeed: [32]byte{seed, 3},
		aliceRand: testrand.New(seed, 2, 'a'), bobRand: testrand.New(seed, 2, 'b')})
	alice, clk, start, doc := pair.alice, pair.clock, pair.start, pair.doc
	// The session is taken as set up (bob's hello ack is not simulated):
	// what is measured is the sending schedule.
	pair.confirmSession(t)

	link := &recordingLink{clock: clk}
	sched := newSchedule(alice.timing, doc.Parameters, clk.Now())
	queued := 0
	for len(link.times) < packets {
		ev, at, _ := sched.pop()
		for len(bursts) > 0 && start.Add(bursts[0]).Before(at) {
			clk.Advance(start.Add(bursts[0]).Sub(clk.Now()))
			bursts = bursts[1:]
			for range perBurst {
				queued++
				if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte(fmt.Sprintf("message %d", queued))}); err != nil {
					t.Fatal(err)
				}
				if control {
					alice.mu.Lock()
					b, err := alice.planSession(clk.Now())
					alice.mu.Unlock()
					if err != nil {
						t.Fatal(err)
					}
					if b != nil {
						p, _, err := b()
						if err != nil {
							t.Fatal(err)
						}
						link.Send(p)
					}
				}
			}
		}
		clk.Advance(at.Sub(clk.Now()))
		// Bob acknowledges every transmission a few seconds after it
		// left, as a network at the default rates would.
		alice.mu.Lock()
		alice.outbox.mu.Lock()
		var due []*transmission
		for id, tr := range alice.outbox.pending {
			if clk.Now().Sub(tr.sentAt) > 4*time.Second {
				delete(alice.outbox.pending, id)
				due = append(due, tr)
			}
		}
		alice.outbox.mu.Unlock()
		for _, tr := range due {
			alice.acknowledged(tr, clk.Now())
		}
		alice.mu.Unlock()
		if err := alice.fire(ev, link); err != nil {
			t.Fatal(err)
		}
	}
	if bursts != nil && len(bursts) > 0 {
		t.Fatalf("the run ended before the user queued every message (%d bursts left)", len(bursts))
	}
	return shapeRun{times: link.times[:packets], sizes: link.sizes[:packets]}
}

// ksStatistic is the two-sample Kolmogorov–Smirnov statistic: the largest
// distance between the two empirical distribution functions.
func ksStatistic(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// ksCritical is the statistic's critical value at level alpha for samples
// of n and m (the asymptotic formula, c(α)·√((n+m)/(n·m))).
func ksCritical(alpha float64, n, m int) float64 {
	c := math.Sqrt(-math.Log(alpha/2) / 2)
	return c * math.Sqrt(float64(n+m)/float64(n*m))
}

// TestTrafficShapeDoesNotShowMessages is the traffic-shape check of P3: a
// client that sends 100 messages emits packets of the same size, with gaps
// drawn from the same distribution, as the same client idle. A two-sample
// Kolmogorov–Smirnov test on the inter-packet gaps (level 0.01) must not
// tell them apart, and must tell apart a control scheduler that sends
// messages on top of the cover traffic instead of in place of drop
// packets.
func TestTrafficShapeDoesNotShowMessages(t *testing.T) {
	const packets = 1000
	// 20 bursts of 5 messages, as a conversation comes, spread over the
	// ~330 s the run lasts at the default rates (3 packets per second).
	var bursts []time.Duration
	for i := range 20 {
		bursts = append(bursts, time.Duration(10+i*15)*time.Second)
	}
	idle := simulate(t, 1, packets, nil, 0, false)
	busy := simulate(t, 2, packets, bursts, 5, false)
	control := simulate(t, 3, packets, bursts, 5, true)

	for _, run := range []shapeRun{idle, busy, control} {
		for _, s := range run.sizes {
			if s != idle.sizes[0] {
				t.Fatalf("packets of %d and %d bytes", s, idle.sizes[0])
			}
		}
	}
	const alpha = 0.01
	critical := ksCritical(alpha, packets-1, packets-1)
	dBusy := ksStatistic(idle.gaps(), busy.gaps())
	dControl := ksStatistic(idle.gaps(), control.gaps())
	t.Logf("KS statistic, idle vs sending 100 messages: %.4f; idle vs the control: %.4f; critical value at %.2f: %.4f", dBusy, dControl, alpha, critical)
	if dBusy >= critical {
		t.Errorf("a client sending messages is told apart from an idle one: D = %.4f ≥ %.4f", dBusy, critical)
	}
	if dControl < critical {
		t.Errorf("the test does not tell apart the control scheduler: D = %.4f < %.4f", dControl, critical)
	}
	// Idle and busy runs of one seed take the same times: the messages
	// change what the slots carry, never when they come.
	same := simulate(t, 1, 300, bursts[:5], 5, false)
	if !slices.EqualFunc(idle.times[:300], same.times, time.Time.Equal) {
		t.Error("with the same seed, queuing messages changed the packet times")
	}
}

func (l *recordingLink) SetRetention(time.Duration) error { return nil }
