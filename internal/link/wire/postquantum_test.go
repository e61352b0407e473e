package wire

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// tamperConn flips a bit of the next write once armed.
type tamperConn struct {
	net.Conn
	armed atomic.Bool
}

func (t *tamperConn) Write(b []byte) (int, error) {
	if t.armed.CompareAndSwap(true, false) {
		b = append([]byte(nil), b...)
		b[100] ^= 1
	}
	return t.Conn.Write(b)
}

// TestTamperedFrame checks that a modified frame on the wire ends the link
// with ErrMalformedFrame, whichever cipher protects it (TLS's record
// protection on version 2, Noise's on version 1).
func TestTamperedFrame(t *testing.T) {
	for version, dial := range map[int]dialer{VersionPostQuantum: Dial, VersionClassical: DialClassical} {
		ck, sk := keypair(t, 6), keypair(t, 7)
		clientSide, serverSide := net.Pipe()
		tamper := &tamperConn{Conn: clientSide}
		var s *Conn
		var serr error
		done := make(chan struct{})
		a := acceptor(t, sk, true)
		go func() {
			defer close(done)
			s, serr = a.Accept(serverSide, func([KeySize]byte) error { return nil }, OneFrameSize(testFrameSize))
		}()
		c, err := dial(tamper, ck, pub(sk), testFrameSize)
		<-done
		if err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		defer c.Close()
		defer s.Close()
		// The client reads, so that the server's TLS alert is taken.
		go func() {
			for {
				if _, err := c.ReadFrame(); err != nil {
					return
				}
			}
		}()
		tamper.armed.Store(true)
		go c.WriteFrame(Frame{Type: FramePacket, Body: []byte("x")})
		if _, err := s.ReadFrame(); !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("version %d: tampered frame: %v, want ErrMalformedFrame", version, err)
		}
	}
}

// TestClassicalRefused: an acceptor that no longer takes classical links
// refuses a version 1 initiator, and a TLS initiator that offers no
// post-quantum group, with ErrClassicalRefused; one that takes them serves
// the version 1 initiator.
func TestClassicalRefused(t *testing.T) {
	ck, sk := keypair(t, 10), keypair(t, 11)
	allow := func([KeySize]byte) error { return nil }
	_, _, cerr, serr := linkWith(t, DialClassical, acceptor(t, sk, false), ck, pub(sk), allow)
	if !errors.Is(serr, ErrClassicalRefused) || !errors.Is(serr, ErrHandshake) || cerr == nil {
		t.Fatalf("version 1 initiator: client %v, server %v; want refused", cerr, serr)
	}
	c, _, cerr, serr := linkWith(t, DialClassical, acceptor(t, sk, true), ck, pub(sk), allow)
	if cerr != nil || serr != nil || c.Version() != VersionClassical {
		t.Fatalf("version 1 initiator while classical links are taken: client %v, server %v", cerr, serr)
	}

	classicalTLS := func(conn net.Conn, _ Keypair, _ [KeySize]byte, _ int) (*Conn, error) {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
		return nil, tc.Handshake()
	}
	_, _, cerr, serr = linkWith(t, classicalTLS, acceptor(t, sk, true), ck, pub(sk), allow)
	if !errors.Is(serr, ErrClassicalRefused) || cerr == nil {
		t.Fatalf("TLS initiator with X25519 and P-256 only: client %v, server %v; want refused", cerr, serr)
	}
}

// TestDialPreviousRelease: a responder that speaks version 1 only (the
// previous release) answers a version 2 handshake with Noise bytes; Dial
// says so with ErrPeerClassical, and DialClassical then succeeds.
func TestDialPreviousRelease(t *testing.T) {
	ck, sk := keypair(t, 12), keypair(t, 13)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2 {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// What the previous release's responder does.
			if c, err := acceptClassical(conn, conn, sk, func([KeySize]byte) error { return nil }, testFrameSize); err == nil {
				c.WriteFrame(Frame{Type: FrameNoOp})
			}
			defer conn.Close()
		}
	}()
	dial := func(d dialer) (*Conn, error) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := d(conn, ck, pub(sk), testFrameSize)
		if err != nil {
			conn.Close()
		}
		return c, err
	}
	// The responder's Noise message starts with a random byte: one time in
	// 128 it looks like a TLS record header and the handshake fails
	// otherwise (the dialer then tries again); the seeds here do not.
	if _, err := dial(Dial); !errors.Is(err, ErrPeerClassical) {
		t.Fatalf("dialing a version 1 responder: %v, want ErrPeerClassical", err)
	}
	c, err := dial(DialClassical)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if f, err := c.ReadFrame(); err != nil || f.Type != FrameNoOp {
		t.Fatalf("frame from the version 1 responder: %v %v", f, err)
	}
	wg.Wait()
}

// TestRelayedHandshakeFails: a man in the middle who terminates TLS with
// each side and relays what is inside cannot make a link, since the Noise
// handshake is bound to each side's own TLS session.
func TestRelayedHandshakeFails(t *testing.T) {
	ck, sk := keypair(t, 14), keypair(t, 15)
	a := acceptor(t, sk, false)
	cert, err := selfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	toClient, clientSide := net.Pipe()
	toServer, serverSide := net.Pipe()
	var serr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, serr = a.Accept(serverSide, func([KeySize]byte) error { return nil }, OneFrameSize(testFrameSize))
		serverSide.Close()
	}()
	go func() {
		defer wg.Done()
		in := tls.Server(toClient, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, CurvePreferences: postQuantumGroups})
		out := tls.Client(toServer, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, CurvePreferences: postQuantumGroups})
		if in.Handshake() != nil || out.Handshake() != nil {
			t.Error("the relay's own TLS handshakes failed")
		}
		go func() { io.Copy(out, in); out.Close() }()
		io.Copy(in, out)
		in.Close()
	}()
	_, cerr := Dial(clientSide, ck, pub(sk), testFrameSize)
	clientSide.Close()
	wg.Wait()
	if cerr == nil || serr == nil {
		t.Fatalf("through a relaying man in the middle: client %v, server %v; want both to fail", cerr, serr)
	}
}

// BenchmarkHandshake measures both sides of one link handshake of each
// version over an in-memory connection: the cost a node pays per link.
func BenchmarkHandshake(b *testing.B) {
	ck, sk := keypair(b, 16), keypair(b, 17)
	a := acceptor(b, sk, true)
	for _, v := range []struct {
		name string
		dial dialer
	}{{"classical", DialClassical}, {"post-quantum", Dial}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				clientSide, serverSide := net.Pipe()
				done := make(chan error, 1)
				go func() {
					s, err := a.Accept(serverSide, func([KeySize]byte) error { return nil }, OneFrameSize(testFrameSize))
					if err == nil {
						s.Close()
					}
					done <- err
				}()
				c, err := v.dial(clientSide, ck, pub(sk), testFrameSize)
				if err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// FuzzAccept feeds an acceptor what a hostile initiator might send: every
// input ends in a handshake error (never a panic, never a link), and the
// error wraps ErrHandshake.
func FuzzAccept(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzAccept")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	sk := keypair(f, 18)
	a := acceptor(f, sk, true)
	f.Fuzz(func(t *testing.T, in []byte) {
		clientSide, serverSide := net.Pipe()
		go io.Copy(io.Discard, clientSide) // whatever the acceptor answers
		go func() {
			clientSide.Write(in)
			clientSide.Close()
		}()
		c, err := a.Accept(serverSide, func([KeySize]byte) error { return nil }, OneFrameSize(testFrameSize))
		serverSide.Close()
		if err == nil {
			c.Close()
			t.Fatalf("a link was made from %d bytes of a stranger", len(in))
		}
		if !errors.Is(err, ErrHandshake) {
			t.Fatalf("undocumented error %v", err)
		}
	})
}

// TestDialRefusedByPeer: a peer that answers with a TLS alert — here one
// that takes no post-quantum group, as a responder taking only a later
// link version would refuse this one — fails Dial with ErrPeerRefused.
func TestDialRefusedByPeer(t *testing.T) {
	ck := keypair(t, 19)
	cert, err := selfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	clientSide, serverSide := net.Pipe()
	go func() {
		tls.Server(serverSide, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}}).Handshake()
		serverSide.Close()
	}()
	_, err = Dial(clientSide, ck, [KeySize]byte{}, testFrameSize)
	clientSide.Close()
	if !errors.Is(err, ErrPeerRefused) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("dialing a peer that refuses: %v, want ErrPeerRefused", err)
	}
}
