package wire

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// A version 2 link is TLS 1.3 (crypto/tls) restricted to the hybrid
// X25519MLKEM768 key exchange, so that traffic recorded today stays
// unreadable to someone who later breaks X25519, as long as ML-KEM-768
// holds. Inside it, the Noise XX handshake of version 1 proves both sides'
// X25519 link keys, as they are published in the network document and the
// providers' account tables; its prologue carries a TLS exporter value, so
// the Noise handshake succeeds only inside the TLS session both sides are
// in, and a man in the middle who terminated TLS on each side fails it.
// The Noise cipher states are not used: frames are TLS application data.
//
// TLS certificates are therefore not what authenticates a peer: a
// responder shows a self-signed Ed25519 certificate made when its
// [Acceptor] is made (TLS 1.3 needs one, and encrypts it), and the
// initiator does not check it. This keeps one kind of link key, so
// descriptors, documents and accounts need no new key, and the move from
// version 1 is a change of transport only (docs/design.md, "Links"). Link
// authentication stays X25519: it protects against an adversary able to
// break X25519 while the handshake runs, not one who records it now to
// break it later, which is the threat the key exchange answers.
//
// TLS session resumption is off (no tickets, no client session cache): a
// resumed session would let an observer link a client's connections.

// exporterLabel is the TLS exporter label (RFC 8446, section 7.5) of the
// value that binds the Noise handshake to the TLS session.
const exporterLabel = "EXPORTER-backchannel-link-binding"

// postQuantumGroups is the only key exchange version 2 links take.
var postQuantumGroups = []tls.CurveID{tls.X25519MLKEM768}

// Dial runs a version 2 (post-quantum) handshake as initiator over conn and
// checks that the peer's link key is expected. frameSize is the plaintext
// length of every frame, which the peer must take (see [FrameSizes]). A
// peer of the previous release, which speaks only version 1, fails it with
// an error wrapping [ErrPeerClassical]; a peer that takes no frames of
// frameSize, with an error wrapping [ErrPeerRefused].
func Dial(conn net.Conn, key Keypair, expected [KeySize]byte, frameSize int) (*Conn, error) {
	if err := checkFrameSize(frameSize); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	tc := tls.Client(conn, &tls.Config{
		// The peer is authenticated by the channel-bound Noise handshake
		// below, against the link key the caller expects; its TLS
		// certificate is self-signed and proves nothing.
		InsecureSkipVerify:          true,
		MinVersion:                  tls.VersionTLS13,
		MaxVersion:                  tls.VersionTLS13,
		CurvePreferences:            postQuantumGroups,
		DynamicRecordSizingDisabled: true,
		NextProtos:                  []string{frameProtocol(frameSize)},
	})
	if err := tc.Handshake(); err != nil {
		var notTLS tls.RecordHeaderError
		if errors.As(err, &notTLS) {
			return nil, fmt.Errorf("%w: %w (%v)", ErrHandshake, ErrPeerClassical, err)
		}
		// crypto/tls reports a peer's alert as a *net.OpError with Op
		// "remote error".
		var alert *net.OpError
		if errors.As(err, &alert) && alert.Op == "remote error" {
			return nil, fmt.Errorf("%w: %w (%v)", ErrHandshake, ErrPeerRefused, err)
		}
		return nil, fmt.Errorf("%w: TLS: %v", ErrHandshake, err)
	}
	if got := tc.ConnectionState().NegotiatedProtocol; got != frameProtocol(frameSize) {
		return nil, fmt.Errorf("%w: %w: it did not agree to frames of %d bytes (application protocol %q)", ErrHandshake, ErrPeerRefused, frameSize, got)
	}
	binding, err := sessionBinding(tc)
	if err != nil {
		return nil, err
	}
	if _, _, err := noiseInitiator(tc, key, expected, binding); err != nil {
		return nil, err
	}
	return newConn(conn, tc, VersionPostQuantum, frameSize, expected, nil, nil), nil
}

// Acceptor takes the links other nodes and clients open: version 2 always,
// version 1 only while classical says so. It may be used from several
// goroutines at once.
type Acceptor struct {
	key       Keypair
	config    *tls.Config
	classical func() bool
}

// NewAcceptor makes an acceptor that proves key. classical reports, at each
// handshake, whether a version 1 link is still taken (nil: never).
func NewAcceptor(key Keypair, classical func() bool) (*Acceptor, error) {
	cert, err := selfSignedCertificate()
	if err != nil {
		return nil, err
	}
	a := &Acceptor{key: key, classical: classical}
	a.config = &tls.Config{
		Certificates:                []tls.Certificate{cert},
		MinVersion:                  tls.VersionTLS13,
		MaxVersion:                  tls.VersionTLS13,
		CurvePreferences:            postQuantumGroups,
		SessionTicketsDisabled:      true,
		DynamicRecordSizingDisabled: true,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if !slices.Contains(hello.SupportedCurves, tls.X25519MLKEM768) {
				return nil, fmt.Errorf("%w: the TLS client offered only %v", ErrClassicalRefused, hello.SupportedCurves)
			}
			return nil, nil
		},
	}
	return a, nil
}

// Accept runs the handshake as responder over conn, of the version the
// initiator's first bytes show, with frames of one of sizes (see
// [FrameSizes]). authorize is called with the initiator's link key once the
// handshake has proven it; an error from it fails the handshake. A refused
// classical initiator fails it with an error wrapping
// [ErrClassicalRefused].
func (a *Acceptor) Accept(conn net.Conn, authorize func(peer [KeySize]byte) error, sizes FrameSizes) (*Conn, error) {
	if err := sizes.check(); err != nil {
		return nil, err
	}
	started := time.Now()
	conn.SetDeadline(started.Add(firstMessageTimeout))
	defer conn.SetDeadline(time.Time{})
	peeked := &peekedConn{Conn: conn, r: bufio.NewReaderSize(conn, 16)}
	head, err := peeked.r.Peek(3)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the initiator's first bytes: %v", ErrHandshake, err)
	}
	conn.SetDeadline(started.Add(handshakeTimeout))
	if !startsTLS(head) {
		if a.classical == nil || !a.classical() {
			return nil, fmt.Errorf("%w: %w: a link of version %d, and this side takes version %d only", ErrHandshake, ErrClassicalRefused, VersionClassical, VersionPostQuantum)
		}
		return acceptClassical(conn, peeked, a.key, authorize, sizes.Classical)
	}
	config := a.config.Clone()
	config.NextProtos = sizes.protocols()
	tc := tls.Server(peeked, config)
	if err := tc.Handshake(); err != nil {
		if errors.Is(err, ErrClassicalRefused) {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return nil, fmt.Errorf("%w: TLS: %v", ErrHandshake, err)
	}
	frameSize, err := parseFrameProtocol(tc.ConnectionState().NegotiatedProtocol)
	if err != nil {
		return nil, fmt.Errorf("%w: the initiator named no frame size this side takes (%v)", ErrHandshake, err)
	}
	binding, err := sessionBinding(tc)
	if err != nil {
		return nil, err
	}
	peer, _, _, err := noiseResponder(tc, a.key, binding, authorize)
	if err != nil {
		return nil, err
	}
	return newConn(conn, tc, VersionPostQuantum, frameSize, peer, nil, nil), nil
}

// startsTLS reports whether a connection's first bytes are a TLS handshake
// record's header (type 22, version 3.1 to 3.3), as every ClientHello
// starts. A version 1 initiator starts with a random X25519 key, which
// looks like this once in about 5.6 million connections: that connection
// fails and its initiator connects again.
func startsTLS(head []byte) bool {
	return head[0] == 0x16 && head[1] == 0x03 && head[2] >= 0x01 && head[2] <= 0x03
}

// sessionBinding checks that a TLS session is post-quantum and returns the
// Noise prologue that binds a handshake to it.
func sessionBinding(tc *tls.Conn) ([]byte, error) {
	cs := tc.ConnectionState()
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
		return nil, fmt.Errorf("%w: %w: TLS version %#x with key exchange %v", ErrHandshake, ErrClassicalRefused, cs.Version, cs.CurveID)
	}
	value, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS exporter: %v", ErrHandshake, err)
	}
	return append([]byte(postQuantumPrologue), value...), nil
}

// selfSignedCertificate makes the certificate TLS 1.3 requires of a
// responder, for a key made now and never stored.
func selfSignedCertificate() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wire: making the TLS certificate's key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wire: making the TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// peekedConn reads through the buffer its first bytes were peeked into.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// recordRefused reports whether a read failed because TLS refused what the
// peer sent: a record header that is not one (tls.RecordHeaderError), or a
// record that does not authenticate or parse, which crypto/tls answers with
// an alert and reports as a *net.OpError with Op "local error".
func recordRefused(err error) bool {
	var op *net.OpError
	var header tls.RecordHeaderError
	return errors.As(err, &header) || errors.As(err, &op) && op.Op == "local error"
}
