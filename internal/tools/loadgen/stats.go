package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Stats counts what the simulated clients did. It is safe for concurrent
// use.
type Stats struct {
	mu          sync.Mutex
	sentCount   int
	sentBytes   int64
	seen        map[uint64]struct{} // client<<40 | seq, for exactly-once counting
	duplicates  int
	foreignSeen int
	latencies   []time.Duration
}

func newStats() *Stats { return &Stats{seen: map[uint64]struct{}{}} }

func (s *Stats) sent(bytes int) {
	s.mu.Lock()
	s.sentCount++
	s.sentBytes += int64(bytes)
	s.mu.Unlock()
}

func (s *Stats) delivered(client uint32, seq uint64, latency time.Duration) {
	key := uint64(client)<<40 | seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seen[key]; dup {
		s.duplicates++
		return
	}
	s.seen[key] = struct{}{}
	s.latencies = append(s.latencies, latency)
}

func (s *Stats) foreign() {
	s.mu.Lock()
	s.foreignSeen++
	s.mu.Unlock()
}

// Snapshot is the counts at one moment.
type Snapshot struct {
	Sent, Delivered, Duplicates, Foreign int
	SentBytes                            int64
}

// Snapshot returns the counts so far.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{Sent: s.sentCount, Delivered: len(s.seen), Duplicates: s.duplicates, Foreign: s.foreignSeen, SentBytes: s.sentBytes}
}

// Latencies returns the delivered packets' latencies, sorted.
func (s *Stats) Latencies() []time.Duration {
	s.mu.Lock()
	out := slices.Clone(s.latencies)
	s.mu.Unlock()
	slices.Sort(out)
	return out
}

// Percentile returns the p-th percentile (0 to 100) of sorted latencies,
// by the nearest-rank method; zero if there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
