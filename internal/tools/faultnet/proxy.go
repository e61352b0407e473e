// Package faultnet is a TCP proxy that makes the connections through it
// slow, damaged or reset, for the fault-injection tests: the kernels of the
// machines the tests run on have no netem (sch_netem is not loaded and
// cannot be), so the faults a bad network makes are made here instead, in
// user space, between a node's published address and the one it listens on.
//
// What a faulty network does to a TCP connection, as its ends see it:
//
//   - latency and jitter: every chunk read is written on after a delay;
//     chunks keep their order, as TCP's do;
//   - a narrow link: at most BytesPerSecond pass each way;
//   - loss that TCP cannot hide: a bit flipped in a chunk (a middlebox, a
//     bad NIC), which the link's authenticated encryption detects; packet
//     loss TCP does hide shows as latency;
//   - resets: a connection is cut, with a TCP reset to both ends, after a
//     random number of bytes passed on (what was read and not yet passed
//     on is lost with it).
//
// It also records, if asked (Faults.Record), every byte that crosses it,
// as an observer of the link would: the recording adversary of
// e2e/TestRecordedTrafficAfterX25519Falls.
//
// It is test support: no binary uses it.
package faultnet

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are what the proxy does to each connection. The zero value passes
// everything through untouched.
type Faults struct {
	// Latency is added to every chunk, each way; Jitter adds a uniform
	// random part up to it.
	Latency, Jitter time.Duration
	// BytesPerSecond limits each direction of each connection; 0 is no
	// limit.
	BytesPerSecond int
	// Corrupt is the probability that a chunk has one bit flipped.
	Corrupt float64
	// ResetAfter, when not 0, cuts each connection after a random number
	// of bytes (both ways together) between ResetAfter/2 and 3/2·ResetAfter.
	ResetAfter int64
	// Record, if set, is given every chunk read from either side, before
	// any fault, from the relay's goroutines (it must be safe for that).
	Record func(Chunk)
}

// Chunk is bytes read from one side of a relayed connection.
type Chunk struct {
	// Conn numbers the proxy's connections from 1, in the order accepted.
	Conn int64
	// FromDialer: the bytes came from the side that connected (towards
	// the target); else from the target.
	FromDialer bool
	Data       []byte
}

// Stats count what the proxy did.
type Stats struct {
	Connections int64 // accepted
	Bytes       int64 // passed on, both ways
	Corrupted   int64 // chunks with a bit flipped
	Resets      int64 // connections cut
}

// Proxy accepts connections on its address and relays each to the target.
type Proxy struct {
	ln     net.Listener
	target string
	faults atomic.Pointer[Faults]

	connections, bytes, corrupted, resets atomic.Int64

	mu     sync.Mutex
	rng    *rand.Rand         // guarded by mu
	links  map[*link]struct{} // open; guarded by mu
	closed bool               // guarded by mu
	wg     sync.WaitGroup
}

// Listen starts a proxy on addr relaying to target with the given faults;
// seed makes its random choices repeatable.
func Listen(addr, target string, f Faults, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listening on %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(seed, 0x6661756c746e6574)), links: map[*link]struct{}{}}
	p.faults.Store(&f)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set changes the faults of the connections from now on (the reset point
// of an open connection stays as it was chosen).
func (p *Proxy) Set(f Faults) { p.faults.Store(&f) }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Connections: p.connections.Load(), Bytes: p.bytes.Load(), Corrupted: p.corrupted.Load(), Resets: p.resets.Load()}
}

// Close stops accepting, cuts every open connection and waits for the
// relays to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	links := maps.Clone(p.links)
	p.mu.Unlock()
	for l := range links {
		l.end(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := p.connections.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(in, n)
		}()
	}
}

// float64 and int64N draw from the proxy's generator.
func (p *Proxy) float64() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

func (p *Proxy) int64N(n int64) int64 {
	if n <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Int64N(n)
}

// track adds a link to the set Close ends; it reports false, adding
// nothing, when the proxy is closing.
func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.links[l] = struct{}{}
	return true
}

func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l)
}

// relay joins a connection to a new one to the target until either ends
// or the reset point is reached.
func (p *Proxy) relay(in net.Conn, n int64) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	f := *p.faults.Load()
	link := &link{p: p, n: n, in: in, out: out, left: -1, done: make(chan struct{})}
	if !p.track(link) {
		link.end(false)
		return
	}
	defer p.untrack(link)
	if f.ResetAfter > 0 {
		link.left = f.ResetAfter/2 + p.int64N(f.ResetAfter+1)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); link.pipe(out, in, true) }()
	go func() { defer wg.Done(); link.pipe(in, out, false) }()
	wg.Wait()
}

// link is one relayed connection: both of its sides and the bytes left
// before it is cut.
type link struct {
	p       *Proxy
	n       int64 // its number among the proxy's connections
	in, out net.Conn

	done chan struct{} // closed when either side ends: writers stop waiting
	once sync.Once

	mu    sync.Mutex
	left  int64 // bytes before the reset; -1 for never; guarded by mu
	reset bool  // guarded by mu
}

// end closes both sides (with a TCP reset when cut) and wakes the writers.
func (l *link) end(cut bool) {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.in, l.out} {
			if tc, ok := c.(*net.TCPConn); ok && cut {
				tc.SetLinger(0)
			}
			c.Close()
		}
		close(l.done)
	})
}

// take counts n bytes about to be passed on against the reset point, and
// reports how many may pass and whether the link is to be cut after them;
// -1 when it was cut already.
func (l *link) take(n int) (pass int, last bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.reset:
		return -1, false
	case l.left < 0 || int64(n) < l.left:
		if l.left > 0 {
			l.left -= int64(n)
		}
		return n, false
	}
	l.reset = true
	return int(l.left), true
}

// chunk is data read from one side, to be written to the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe relays src to dst: a reader that stamps each chunk with the time
// it may leave, and a writer that waits for it and keeps to the rate.
// fromDialer says which side src is, for the recording.
func (l *link) pipe(dst, src net.Conn, fromDialer bool) {
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				f := *l.p.faults.Load()
				data := append([]byte(nil), buf[:n]...)
				if f.Record != nil {
					f.Record(Chunk{Conn: l.n, FromDialer: fromDialer, Data: bytes.Clone(data)})
				}
				if f.Corrupt > 0 && l.p.float64() < f.Corrupt {
					bit := l.p.int64N(int64(len(data)) * 8)
					data[bit/8] ^= 1 << (bit % 8)
					l.p.corrupted.Add(1)
				}
				delay := f.Latency
				if f.Jitter > 0 {
					delay += time.Duration(l.p.int64N(int64(f.Jitter)))
				}
				chunks <- chunk{data: data, due: time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	var prevDue time.Time
	for c := range chunks {
		// Chunks leave in order: one never overtakes an earlier one.
		due := c.due
		if due.Before(prevDue) {
			due = prevDue
		}
		prevDue = due
		if !l.sleep(time.Until(due)) {
			break
		}
		pass, last := l.take(len(c.data))
		if pass < 0 {
			break
		}
		if _, err := dst.Write(c.data[:pass]); err != nil {
			break
		}
		l.p.bytes.Add(int64(pass))
		if last {
			l.p.resets.Add(1)
			l.end(true)
			break
		}
		if bps := l.p.faults.Load().BytesPerSecond; bps > 0 && !l.sleep(time.Duration(len(c.data))*time.Second/time.Duration(bps)) {
			break
		}
	}
	// Stop the other direction too: a TCP connection that ends one way
	// here ends both (the relays' ends are not half-closed separately).
	l.end(false)
	for range chunks { // let the reader end
	}
}

// sleep waits for d, or until the link ends; it reports whether the link
// is still up.
func (l *link) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}
