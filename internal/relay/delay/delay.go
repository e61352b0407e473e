// Package delay holds items until their due time and then hands them on, in
// due-time order: the mix node's hold of each packet for the delay its sender
// chose (Loopix's per-hop exponential delays). It is a timer heap driven by one
// goroutine, not a goroutine or timer per item, and its capacity is bounded:
// when full, Push refuses and the caller counts the drop.
//
// It knows nothing of packets or networks.
package delay

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
)

// Queue is a bounded delay queue. Run delivers; Push may be called from any
// goroutine.
type Queue[T any] struct {
	clock    clock.Clock
	deliver  func(T)
	capacity int

	mu    sync.Mutex
	items itemHeap[T] // guarded by mu
	seq   uint64      // guarded by mu: keeps equal due times in push order
	wake  chan struct{}
}

// New returns a queue of at most capacity items that calls deliver, from
// Run's goroutine, for each item when it falls due.
func New[T any](c clock.Clock, capacity int, deliver func(T)) *Queue[T] {
	return &Queue[T]{clock: c, deliver: deliver, capacity: capacity, wake: make(chan struct{}, 1)}
}

// Push schedules item for due. It reports false, and keeps nothing, if the
// queue is full.
func (q *Queue[T]) Push(item T, due time.Time) bool {
	q.mu.Lock()
	if len(q.items) >= q.capacity {
		q.mu.Unlock()
		return false
	}
	heap.Push(&q.items, entry[T]{due: due, seq: q.seq, item: item})
	q.seq++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// Len is the number of items waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Run delivers items as they fall due until ctx is done. Items still waiting
// then stay in the queue (see Drain).
func (q *Queue[T]) Run(ctx context.Context) {
	for {
		for _, item := range q.due() {
			q.deliver(item)
		}
		var timer clock.Timer
		var fire <-chan time.Time
		if next, ok := q.next(); ok {
			timer = q.clock.NewTimerAt(next)
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-q.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// Drain removes and returns every waiting item in due order, for a graceful
// shutdown that forwards them early rather than losing them.
func (q *Queue[T]) Drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]T, 0, len(q.items))
	for len(q.items) > 0 {
		out = append(out, heap.Pop(&q.items).(entry[T]).item)
	}
	return out
}

// due pops the items whose time has come.
func (q *Queue[T]) due() []T {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []T
	for len(q.items) > 0 && !q.items[0].due.After(now) {
		out = append(out, heap.Pop(&q.items).(entry[T]).item)
	}
	return out
}

func (q *Queue[T]) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].due, true
}

type entry[T any] struct {
	due  time.Time
	seq  uint64
	item T
}

type itemHeap[T any] []entry[T]

func (h itemHeap[T]) Len() int { return len(h) }
func (h itemHeap[T]) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h itemHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap[T]) Push(x any)   { *h = append(*h, x.(entry[T])) }
func (h *itemHeap[T]) Pop() any {
	old := *h
	e := old[len(old)-1]
	var zero entry[T]
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	return e
}
