package wire

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
)

// TestFrameSizeNegotiation: a version 2 initiator names its frame size and
// the acceptor takes it if it is one of its sizes, so that both sides frame
// alike; a size the acceptor does not take fails the handshake on both
// sides; a version 1 link, which names none, has the classical size.
func TestFrameSizeNegotiation(t *testing.T) {
	ck, sk := keypair(t, 20), keypair(t, 21)
	allow := func([KeySize]byte) error { return nil }
	a := acceptor(t, sk, true)
	sizes := FrameSizes{Negotiated: []int{600, 900}, Classical: 500}
	for _, size := range sizes.Negotiated {
		c, s, cerr, serr := linkSized(t, Dial, a, ck, pub(sk), allow, size, sizes)
		if cerr != nil || serr != nil {
			t.Fatalf("frames of %d bytes: client %v, server %v", size, cerr, serr)
		}
		if c.FrameSize() != size || s.FrameSize() != size {
			t.Fatalf("frames of %d bytes named: client frames %d, server frames %d", size, c.FrameSize(), s.FrameSize())
		}
		body := make([]byte, size-FrameOverhead)
		body[0], body[len(body)-1] = 1, 2
		go c.WriteFrame(Frame{Type: FramePacket, Seq: 1, Body: body})
		f, err := s.ReadFrame()
		if err != nil || len(f.Body) != len(body) || f.Body[len(body)-1] != 2 {
			t.Fatalf("a full frame of %d bytes: %v, body of %d bytes", size, err, len(f.Body))
		}
	}

	_, _, cerr, serr := linkSized(t, Dial, a, ck, pub(sk), allow, 700, sizes)
	if !errors.Is(cerr, ErrPeerRefused) || !errors.Is(serr, ErrHandshake) {
		t.Fatalf("frames of 700 bytes, acceptor takes %v: client %v, server %v; want both refused", sizes.Negotiated, cerr, serr)
	}

	c, s, cerr, serr := linkSized(t, DialClassical, a, ck, pub(sk), allow, 500, sizes)
	if cerr != nil || serr != nil || s.FrameSize() != 500 || c.Version() != VersionClassical {
		t.Fatalf("version 1 link: client %v, server %v", cerr, serr)
	}

	// A TLS initiator that names no frame size (a build from before the
	// negotiation, never released) is refused.
	unnamed := func(conn net.Conn, _ Keypair, _ [KeySize]byte, _ int) (*Conn, error) {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, CurvePreferences: postQuantumGroups})
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		_, err := tc.Read(make([]byte, 1))
		return nil, err
	}
	if _, _, _, serr := linkSized(t, unnamed, a, ck, pub(sk), allow, 600, sizes); !errors.Is(serr, ErrHandshake) {
		t.Fatalf("TLS initiator naming no frame size: server %v; want refused", serr)
	}
}

// TestParseFrameProtocol: only the canonical decimal form of a size
// within bounds is a frame size.
func TestParseFrameProtocol(t *testing.T) {
	if n, err := parseFrameProtocol(frameProtocol(10430)); err != nil || n != 10430 {
		t.Fatalf("round trip: %d, %v", n, err)
	}
	for _, name := range []string{"", "h2", "backchannel-frames/", "backchannel-frames/012", "backchannel-frames/+12",
		"backchannel-frames/1", "backchannel-frames/99999999999999999999", "backchannel-frames/70000", "backchannel-frames/ 600"} {
		if n, err := parseFrameProtocol(name); err == nil {
			t.Errorf("%q parsed as a frame size of %d", name, n)
		}
	}
}
