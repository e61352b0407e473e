package node

import (
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
)

// TestGroupCommitWaitsForTheFirstDue: the committer syncs a batch when its
// first packet must leave — a forward at the end of its delay counted from
// when it was taken, a packet to store or drop at once — or maxSyncWait
// after the batch's first packet, taking what arrives meanwhile; and a
// forward leaves at taken + delay, however long the commit waited.
func TestGroupCommitWaitsForTheFirstDue(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	forward := func(taken time.Time, delay time.Duration) result {
		return result{forward: true, delay: delay, taken: taken}
	}
	type step struct {
		arrive  []result      // sent after the first
		advance time.Duration // then the clock moves on by this
	}
	cases := []struct {
		name  string
		first result
		step
		want int // results in the batch
	}{
		{"a forward waits for its delay, taking a later forward", forward(t0, 30*time.Millisecond),
			step{[]result{forward(t0, 100*time.Millisecond)}, 30 * time.Millisecond}, 2},
		{"a packet to store or drop ends the wait", forward(t0, 30*time.Millisecond),
			step{[]result{forward(t0, time.Second), {taken: t0}}, 0}, 3},
		{"a long delay waits maxSyncWait at most", forward(t0, 10*time.Second),
			step{nil, maxSyncWait}, 1},
		{"a forward already due waits only for the last sync's interval", forward(t0, 0),
			step{nil, 0}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			n := &Node{cfg: Config{Clock: clk}, results: make(chan result, 16)}
			done := make(chan []result, 1)
			go func() {
				batch, _ := n.gather([]result{c.first}, t0.Add(-time.Second))
				done <- batch
			}()
			for _, r := range c.arrive {
				n.results <- r
			}
			clk.Advance(c.advance)
			select {
			case batch := <-done:
				if len(batch) != c.want {
					t.Fatalf("the batch has %d results, want %d", len(batch), c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the batch was not synced")
			}
		})
	}
	r := forward(t0, 40*time.Millisecond)
	if due := r.due(); !due.Equal(t0.Add(40 * time.Millisecond)) {
		t.Fatalf("a forward taken at t0 with a 40 ms delay is due at %v", due)
	}
}
