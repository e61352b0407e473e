package faultnet

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// target is a server behind the proxy that echoes, or only reads.
func target(t *testing.T, echo bool) (addr string, received chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	received = make(chan []byte, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if echo {
					io.Copy(c, c)
					return
				}
				got, _ := io.ReadAll(c)
				received <- got
			}()
		}
	}()
	return ln.Addr().String(), received
}

func proxy(t *testing.T, to string, f Faults) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", to, f, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestPassesThrough: without faults every byte comes back as it was sent.
func TestPassesThrough(t *testing.T) {
	addr, _ := target(t, true)
	p := proxy(t, addr, Faults{})
	c := dial(t, p)
	sent := randomBytes(1<<20, 1)
	go c.Write(sent)
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("the data came back changed")
	}
	if s := p.Stats(); s.Connections != 1 || s.Bytes != 2<<20 || s.Corrupted != 0 || s.Resets != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRecord: the recording holds every byte each way, in order, before
// the faults (here a bit flipped in every chunk).
func TestRecord(t *testing.T) {
	addr, _ := target(t, true)
	var mu sync.Mutex
	recorded := map[bool][]byte{}
	p := proxy(t, addr, Faults{Corrupt: 1, Record: func(c Chunk) {
		mu.Lock()
		defer mu.Unlock()
		if c.Conn != 1 {
			t.Errorf("chunk of connection %d, want 1", c.Conn)
		}
		recorded[c.FromDialer] = append(recorded[c.FromDialer], c.Data...)
	}})
	c := dial(t, p)
	sent := randomBytes(64<<10, 2)
	go c.Write(sent)
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(recorded[true], sent) {
		t.Fatal("the recording of what the dialer sent differs from it")
	}
	// The target echoed the damaged bytes; the recording has them as they
	// crossed back, before the next flip.
	if len(recorded[false]) != len(sent) || bytes.Equal(got, recorded[false]) {
		t.Fatalf("the recording back holds %d bytes; the echo came back with %d flips", len(recorded[false]), p.Stats().Corrupted)
	}
}

// TestLatency: a round trip crosses the proxy twice, so it takes at least
// twice the latency; bytes keep their order whatever the jitter.
func TestLatency(t *testing.T) {
	addr, _ := target(t, true)
	const latency = 40 * time.Millisecond
	p := proxy(t, addr, Faults{Latency: latency, Jitter: 20 * time.Millisecond})
	c := dial(t, p)
	for i := range 5 {
		msg := []byte{byte(i), 1, 2, 3}
		start := time.Now()
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 2*latency {
			t.Fatalf("a round trip took %v, under twice the latency %v", took, latency)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %x, sent %x", got, msg)
		}
	}
	// Many small writes with jitter still arrive in order.
	sent := randomBytes(64<<10, 2)
	go func() {
		for i := 0; i < len(sent); i += 512 {
			c.Write(sent[i : i+512])
		}
	}()
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("jitter reordered bytes")
	}
}

// TestCorrupt: with Corrupt at 1 every chunk has exactly one bit flipped.
func TestCorrupt(t *testing.T) {
	addr, received := target(t, false)
	p := proxy(t, addr, Faults{Corrupt: 1})
	c := dial(t, p)
	sent := randomBytes(100<<10, 3)
	c.Write(sent)
	c.Close()
	got := <-received
	if len(got) != len(sent) {
		t.Fatalf("%d bytes arrived of %d", len(got), len(sent))
	}
	flipped := 0
	for i := range got {
		flipped += bits.OnesCount8(got[i] ^ sent[i])
	}
	if s := p.Stats(); flipped == 0 || int64(flipped) != s.Corrupted {
		t.Fatalf("%d bits flipped, %d chunks corrupted", flipped, s.Corrupted)
	}
}

// TestReset: a connection is cut with a TCP reset, at both ends, after
// between half and one and a half times ResetAfter bytes.
func TestReset(t *testing.T) {
	addr, received := target(t, false)
	const after = 10_000
	p := proxy(t, addr, Faults{ResetAfter: after})
	c := dial(t, p)
	var err error
	for range 100 {
		if _, err = c.Write(make([]byte, 1000)); err != nil {
			break
		}
	}
	got := <-received
	if len(got) < after/2 || len(got) > after*3/2 {
		t.Fatalf("cut after %d bytes, want %d to %d", len(got), after/2, after*3/2)
	}
	if err == nil { // the reset had not come back yet when writing stopped
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("the client's first error after the cut: %v, want a connection reset", err)
	}
	if s := p.Stats(); s.Resets != 1 || s.Bytes != int64(len(got)) {
		t.Fatalf("stats %+v, %d bytes arrived", s, len(got))
	}
}

// TestRate: a narrow link takes at least the time its rate allows (all but
// the last chunk's share).
func TestRate(t *testing.T) {
	addr, received := target(t, false)
	const rate, size = 1 << 20, 400 << 10
	p := proxy(t, addr, Faults{BytesPerSecond: rate})
	c := dial(t, p)
	start := time.Now()
	c.Write(make([]byte, size))
	c.Close()
	got := <-received
	if len(got) != size {
		t.Fatalf("%d bytes arrived of %d", len(got), size)
	}
	if took, least := time.Since(start), time.Duration(size-32<<10)*time.Second/rate; took < least {
		t.Fatalf("%d bytes at %d B/s took %v, under %v", size, rate, took, least)
	}
}

// TestCloseCutsConnections: Close returns with connections still open, and
// they end.
func TestCloseCutsConnections(t *testing.T) {
	addr, _ := target(t, true)
	p, err := Listen("127.0.0.1:0", addr, Faults{Latency: time.Hour}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	c.Write([]byte("held for an hour"))
	p.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection outlived the proxy")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("the proxy still accepts")
	}
}
