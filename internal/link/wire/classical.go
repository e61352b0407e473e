package wire

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"

	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// The Noise handshake proves each side's X25519 link key: on its own it is
// link version 1; inside TLS, bound to the TLS session by its prologue, it
// is the authentication of link version 2.

// classicalPrologue binds a version 1 handshake to this protocol and
// version; postQuantumPrologue starts a version 2 one's, followed by the
// TLS exporter value. Peers speaking another version fail the handshake
// instead of misreading frames.
const (
	classicalPrologue   = "backchannel link v1"
	postQuantumPrologue = "backchannel link v2 tls-exporter "
)

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2b)

// Handshake message lengths for Noise XX with empty payloads.
const (
	msg1Length = KeySize                               // -> e
	msg2Length = KeySize + KeySize + tagSize + tagSize // <- e, ee, s, es
	msg3Length = KeySize + tagSize + tagSize           // -> s, se
)

// Keypair is a node's or client's X25519 link key pair.
type Keypair = noise.DHKey

// GenerateKeypair makes a link key pair from rand.
func GenerateKeypair(rand io.Reader) (Keypair, error) {
	return noise.DH25519.GenerateKeypair(rand)
}

// KeypairFromSecret rebuilds a link key pair from its secret.
func KeypairFromSecret(secret [32]byte) (Keypair, error) {
	var pub [32]byte
	if err := x25519.ScalarBaseMult(&pub, &secret); err != nil {
		return Keypair{}, fmt.Errorf("wire: link key: %w", err)
	}
	return Keypair{Private: secret[:], Public: pub[:]}, nil
}

// DialClassical runs a version 1 handshake as initiator over conn: Noise
// alone, whose X25519 a recorder of the link can later break. Use it only
// towards a peer of the previous release (see [ErrPeerClassical]), while
// the network still takes classical links.
func DialClassical(conn net.Conn, key Keypair, expected [KeySize]byte, frameSize int) (*Conn, error) {
	if err := checkFrameSize(frameSize); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	send, recv, err := noiseInitiator(conn, key, expected, []byte(classicalPrologue))
	if err != nil {
		return nil, err
	}
	return newConn(conn, conn, VersionClassical, frameSize, expected, send, recv), nil
}

// acceptClassical runs a version 1 handshake as responder over stream,
// whose deadline the caller has set.
func acceptClassical(raw, stream net.Conn, key Keypair, authorize func(peer [KeySize]byte) error, frameSize int) (*Conn, error) {
	peer, send, recv, err := noiseResponder(stream, key, []byte(classicalPrologue), authorize)
	if err != nil {
		return nil, err
	}
	return newConn(raw, stream, VersionClassical, frameSize, peer, send, recv), nil
}

// noiseInitiator runs Noise XX as initiator over rw and checks that the
// responder proved the expected link key. It returns the cipher states
// for sending and receiving.
func noiseInitiator(rw io.ReadWriter, key Keypair, expected [KeySize]byte, prologue []byte) (send, recv *noise.CipherState, err error) {
	hs, err := newHandshake(key, true, prologue)
	if err != nil {
		return nil, nil, err
	}
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := rw.Write(msg); err != nil {
		return nil, nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	in := make([]byte, msg2Length)
	if _, err := io.ReadFull(rw, in); err != nil {
		return nil, nil, fmt.Errorf("%w: reading the responder's message: %v", ErrHandshake, err)
	}
	if _, _, _, err := hs.ReadMessage(nil, in); err != nil {
		return nil, nil, fmt.Errorf("%w: responder's message: %v", ErrHandshake, err)
	}
	if subtle.ConstantTimeCompare(hs.PeerStatic(), expected[:]) != 1 {
		return nil, nil, fmt.Errorf("%w: the responder's link key %x is not the expected %x", ErrHandshake, hs.PeerStatic(), expected)
	}
	msg, send, recv, err = hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := rw.Write(msg); err != nil {
		return nil, nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	return send, recv, nil
}

// noiseResponder runs Noise XX as responder over rw. authorize is called
// with the initiator's link key once the handshake has proven it; an error
// from it fails the handshake.
func noiseResponder(rw io.ReadWriter, key Keypair, prologue []byte, authorize func(peer [KeySize]byte) error) (peer [KeySize]byte, send, recv *noise.CipherState, err error) {
	hs, err := newHandshake(key, false, prologue)
	if err != nil {
		return peer, nil, nil, err
	}
	in := make([]byte, msg1Length)
	if _, err := io.ReadFull(rw, in); err != nil {
		return peer, nil, nil, fmt.Errorf("%w: reading the initiator's first message: %v", ErrHandshake, err)
	}
	if _, _, _, err := hs.ReadMessage(nil, in); err != nil {
		return peer, nil, nil, fmt.Errorf("%w: initiator's first message: %v", ErrHandshake, err)
	}
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return peer, nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := rw.Write(msg); err != nil {
		return peer, nil, nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	in = make([]byte, msg3Length)
	if _, err := io.ReadFull(rw, in); err != nil {
		return peer, nil, nil, fmt.Errorf("%w: reading the initiator's last message: %v", ErrHandshake, err)
	}
	_, recv, send, err = hs.ReadMessage(nil, in)
	if err != nil {
		return peer, nil, nil, fmt.Errorf("%w: initiator's last message: %v", ErrHandshake, err)
	}
	copy(peer[:], hs.PeerStatic())
	if err := authorize(peer); err != nil {
		return peer, nil, nil, fmt.Errorf("%w: initiator %x refused: %v", ErrHandshake, peer, err)
	}
	return peer, send, recv, nil
}

func newHandshake(key Keypair, initiator bool, prologue []byte) (*noise.HandshakeState, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: key,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	return hs, nil
}
