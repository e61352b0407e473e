package wire

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

func keypair(t testing.TB, seed byte) Keypair {
	k, err := GenerateKeypair(testrand.New(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const testFrameSize = 2600

// dialer is one of the two ways to open a link.
type dialer func(conn net.Conn, key Keypair, expected [KeySize]byte, frameSize int) (*Conn, error)

// link sets up a TCP link on loopback: the client dials expecting
// expected, the server authorizes with authorize. It returns both ends'
// results.
func link(t *testing.T, client, server Keypair, expected [KeySize]byte, authorize func([KeySize]byte) error) (c, s *Conn, cerr, serr error) {
	return linkWith(t, Dial, acceptor(t, server, true), client, expected, authorize)
}

func acceptor(t testing.TB, key Keypair, classical bool) *Acceptor {
	a, err := NewAcceptor(key, func() bool { return classical })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func linkWith(t *testing.T, dial dialer, a *Acceptor, client Keypair, expected [KeySize]byte, authorize func([KeySize]byte) error) (c, s *Conn, cerr, serr error) {
	t.Helper()
	return linkSized(t, dial, a, client, expected, authorize, testFrameSize, OneFrameSize(testFrameSize))
}

// linkSized is linkWith with the frame size the initiator names and those
// the acceptor takes.
func linkSized(t *testing.T, dial dialer, a *Acceptor, client Keypair, expected [KeySize]byte, authorize func([KeySize]byte) error, size int, sizes FrameSizes) (c, s *Conn, cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		s, serr = a.Accept(conn, authorize, sizes)
		if serr != nil {
			conn.Close()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, cerr = dial(conn, client, expected, size)
	if cerr != nil {
		conn.Close()
	}
	wg.Wait()
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
		if s != nil {
			s.Close()
		}
	})
	return c, s, cerr, serr
}

func pub(k Keypair) (p [KeySize]byte) {
	copy(p[:], k.Public)
	return p
}

func TestLinkFrames(t *testing.T) {
	for _, v := range []struct {
		version int
		dial    dialer
	}{{VersionPostQuantum, Dial}, {VersionClassical, DialClassical}} {
		t.Run(fmt.Sprintf("version %d", v.version), func(t *testing.T) {
			ck, sk := keypair(t, 1), keypair(t, 2)
			var seenPeer [KeySize]byte
			c, s, cerr, serr := linkWith(t, v.dial, acceptor(t, sk, true), ck, pub(sk), func(p [KeySize]byte) error { seenPeer = p; return nil })
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
			if seenPeer != pub(ck) || s.Peer() != pub(ck) || c.Peer() != pub(sk) {
				t.Fatal("peers do not see each other's link keys")
			}
			if c.Version() != v.version || s.Version() != v.version {
				t.Fatalf("link versions %d and %d, want %d", c.Version(), s.Version(), v.version)
			}
			exchangeFrames(t, c, s)
		})
	}
}

func exchangeFrames(t *testing.T, c, s *Conn) {
	// Frames in both directions, the client's sent from two goroutines.
	const n = 200
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				body := bytes.Repeat([]byte{byte(i)}, i)
				if err := c.WriteFrame(Frame{Type: FramePacket, Seq: uint64(i), Body: body}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := map[uint64]bool{}
	for range n {
		f, err := s.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != FramePacket || !bytes.Equal(f.Body, bytes.Repeat([]byte{byte(f.Seq)}, int(f.Seq))) {
			t.Fatalf("frame %d: %v with %d bytes", f.Seq, f.Type, len(f.Body))
		}
		got[f.Seq] = true
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d distinct frames, want %d", len(got), n)
	}
	if err := s.WriteFrames([]Frame{{Type: FrameNoOp}, {Type: FrameAck, Seq: n - 1}}); err != nil {
		t.Fatal(err)
	}
	if f, err := c.ReadFrame(); err != nil || f.Type != FrameNoOp {
		t.Fatalf("no-op: %v %v", f, err)
	}
	if f, err := c.ReadFrame(); err != nil || f.Type != FrameAck || f.Seq != n-1 {
		t.Fatalf("ack: %v %v", f, err)
	}
	if err := c.WriteFrame(Frame{Type: FramePacket, Body: make([]byte, testFrameSize)}); err == nil {
		t.Fatal("an oversized body was sent")
	}
}

func TestHandshakeRefusals(t *testing.T) {
	ck, sk, other := keypair(t, 3), keypair(t, 4), keypair(t, 5)
	_, _, cerr, _ := link(t, ck, sk, pub(other), func([KeySize]byte) error { return nil })
	if !errors.Is(cerr, ErrHandshake) {
		t.Fatalf("dialing the wrong node: %v, want ErrHandshake", cerr)
	}
	refuse := func([KeySize]byte) error { return fmt.Errorf("not a known node") }
	c, _, _, serr := link(t, ck, sk, pub(sk), refuse)
	if !errors.Is(serr, ErrHandshake) {
		t.Fatalf("unauthorized initiator: %v, want ErrHandshake", serr)
	}
	if c != nil {
		if _, err := c.ReadFrame(); err == nil {
			t.Fatal("a refused initiator could read a frame")
		}
	}
}

func TestParseFrameStrict(t *testing.T) {
	good, err := appendFrame(nil, Frame{Type: FrameFetch, Seq: 9, Body: []byte("abc")}, 64)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := ParseFrame(good); err != nil || f.Type != FrameFetch || f.Seq != 9 || string(f.Body) != "abc" {
		t.Fatalf("%v %v", f, err)
	}
	mutate := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, b := range map[string][]byte{
		"short":        good[:FrameOverhead-1],
		"version":      mutate(0, 2),
		"type zero":    mutate(1, 0),
		"type unknown": mutate(1, 9),
		"length":       mutate(13, 60),
		"padding":      mutate(63, 1),
	} {
		if _, err := ParseFrame(b); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: %v, want ErrMalformedFrame", name, err)
		}
	}
}

// FuzzParseFrame checks that a parsed frame re-encodes to the same bytes and
// that every error is ErrMalformedFrame.
func FuzzParseFrame(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseFrame")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		again, err := appendFrame(nil, fr, len(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gives %x (%v)", b, again, err)
		}
	})
}

// BenchmarkFrameRoundTrip measures sending one frame of each link version
// and receiving it on the other side, over an in-memory connection.
func BenchmarkFrameRoundTrip(b *testing.B) {
	for _, v := range []struct {
		name string
		dial dialer
	}{{"classical", DialClassical}, {"post-quantum", Dial}} {
		b.Run(v.name, func(b *testing.B) { benchmarkFrames(b, v.dial) })
	}
}

func benchmarkFrames(b *testing.B, dial dialer) {
	ck, sk := keypair(b, 8), keypair(b, 9)
	clientSide, serverSide := net.Pipe()
	var s *Conn
	done := make(chan struct{})
	a := acceptor(b, sk, true)
	go func() {
		defer close(done)
		s, _ = a.Accept(serverSide, func([KeySize]byte) error { return nil }, OneFrameSize(testFrameSize))
	}()
	c, err := dial(clientSide, ck, pub(sk), testFrameSize)
	<-done
	if err != nil || s == nil {
		b.Fatal(err)
	}
	body := make([]byte, 2556)
	go func() {
		for {
			if _, err := s.ReadFrame(); err != nil {
				return
			}
		}
	}()
	b.SetBytes(testFrameSize)
	for b.Loop() {
		if err := c.WriteFrame(Frame{Type: FramePacket, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	s.Close()
}
