package delay

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
)

var start = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestOrderAgainstReference pushes items with random delays, advances a fake
// clock in random steps, and checks that exactly the due items are
// delivered at each step, in due order (push order for equal times),
// against a sorted reference.
func TestOrderAgainstReference(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
		fake := clock.NewFake(start)
		delivered := make(chan int, 1000)
		q := New(fake, 1000, func(i int) { delivered <- i })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { q.Run(ctx); close(done) }()

		type ref struct {
			due time.Time
			id  int
		}
		var pending []ref
		n := 300
		for id := range n {
			due := start.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
			pending = append(pending, ref{due, id})
			if !q.Push(id, due) {
				t.Fatal("push refused below capacity")
			}
		}
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].due.Before(pending[j].due) })

		now := start
		for len(pending) > 0 {
			step := time.Duration(rng.IntN(8)) * time.Millisecond
			now = now.Add(step)
			var want []int
			for len(pending) > 0 && !pending[0].due.After(now) {
				want = append(want, pending[0].id)
				pending = pending[1:]
			}
			// Advance only once Run has armed its timer for the head.
			fake.Advance(step)
			for _, id := range want {
				select {
				case got := <-delivered:
					if got != id {
						t.Fatalf("seed %d at %v: delivered %d, want %d", seed, now.Sub(start), got, id)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("seed %d: item %d never delivered", seed, id)
				}
			}
			select {
			case got := <-delivered:
				t.Fatalf("seed %d: item %d delivered before its time", seed, got)
			default:
			}
		}
		cancel()
		<-done
	}
}

func TestCapacityAndDrain(t *testing.T) {
	q := New(clock.NewFake(start), 3, func(int) {})
	for i := range 3 {
		if !q.Push(i, start.Add(time.Duration(3-i)*time.Second)) {
			t.Fatal("refused below capacity")
		}
	}
	if q.Push(9, start) {
		t.Fatal("accepted beyond capacity")
	}
	if got := q.Drain(); len(got) != 3 || got[0] != 2 || got[2] != 0 || q.Len() != 0 {
		t.Fatalf("Drain = %v, Len %d", got, q.Len())
	}
}

// BenchmarkPushAndDeliver pushes packets due in 0–100 ms on the real clock
// and waits for all of them: the cost of the heap and its timer per packet.
func BenchmarkPushAndDeliver(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	done := make(chan struct{})
	delivered := 0
	q := New(clock.Real{}, b.N+1, func(int) {
		delivered++
		if delivered == b.N {
			close(done)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	b.ResetTimer()
	now := time.Now()
	for i := range b.N {
		q.Push(i, now.Add(time.Duration(rng.IntN(100))*time.Millisecond))
	}
	<-done
}
