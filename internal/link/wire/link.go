// Package wire is the link protocol between backchannel nodes, and between a
// client and its provider: a Noise handshake (Noise_XX_25519_ChaChaPoly_BLAKE2b
// with github.com/flynn/noise) over a stream connection, in which each side
// proves its X25519 link key and checks the other's against what it expects
// (the network document, or a provider's account table), followed by
// fixed-size encrypted frames.
//
// Every frame on a link has the same length, whatever it carries, so an
// observer of the link learns nothing from sizes. A frame that fails to
// decrypt or parse ends the link (the caller closes it and, as a dialer,
// reconnects); it never affects other links.
//
// It does not reconnect, queue or retransmit: those belong to the node's
// peer management, which uses [Dial] and [Accept].
package wire

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// KeySize is the length of an X25519 link key.
const KeySize = 32

// prologue binds the handshake to this protocol and version: peers speaking
// another version fail the handshake instead of misreading frames.
const prologue = "backchannel link v1"

// handshakeTimeout bounds how long a peer may take to complete a handshake,
// and firstMessageTimeout how long the responder waits for the initiator's
// first message (32 bytes, sent as soon as it connects): a connection that
// sends nothing holds the responder's resources for no longer.
const (
	handshakeTimeout    = 10 * time.Second
	firstMessageTimeout = 2 * time.Second
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

// ErrHandshake is wrapped by every handshake failure.
var ErrHandshake = errors.New("wire: handshake failed")

// Conn is an established link. ReadFrame must be called from one goroutine at
// a time; WriteFrame may be called concurrently with it and with itself.
type Conn struct {
	conn      net.Conn
	frameSize int
	peer      [KeySize]byte

	readMu  sync.Mutex
	reader  *bufio.Reader
	recv    *noise.CipherState
	readBuf []byte

	writeMu      sync.Mutex
	send         *noise.CipherState
	writeBuf     []byte
	writeTimeout time.Duration // guarded by writeMu
}

// Dial runs the handshake as initiator over conn and checks that the peer's
// link key is expected. frameSize is the plaintext length of every frame.
func Dial(conn net.Conn, key Keypair, expected [KeySize]byte, frameSize int) (*Conn, error) {
	if err := checkFrameSize(frameSize); err != nil {
		return nil, err
	}
	hs, err := newHandshake(key, true)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})

	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	in := make([]byte, msg2Length)
	if _, err := io.ReadFull(conn, in); err != nil {
		return nil, fmt.Errorf("%w: reading the responder's message: %v", ErrHandshake, err)
	}
	if _, _, _, err := hs.ReadMessage(nil, in); err != nil {
		return nil, fmt.Errorf("%w: responder's message: %v", ErrHandshake, err)
	}
	if subtle.ConstantTimeCompare(hs.PeerStatic(), expected[:]) != 1 {
		return nil, fmt.Errorf("%w: the responder's link key %x is not the expected %x", ErrHandshake, hs.PeerStatic(), expected)
	}
	msg, send, recv, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	return newConn(conn, frameSize, expected, send, recv), nil
}

// Accept runs the handshake as responder over conn. authorize is called with
// the initiator's link key once the handshake has proven it; an error from it
// fails the handshake.
func Accept(conn net.Conn, key Keypair, authorize func(peer [KeySize]byte) error, frameSize int) (*Conn, error) {
	if err := checkFrameSize(frameSize); err != nil {
		return nil, err
	}
	hs, err := newHandshake(key, false)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	conn.SetDeadline(started.Add(firstMessageTimeout))
	defer conn.SetDeadline(time.Time{})

	in := make([]byte, msg1Length)
	if _, err := io.ReadFull(conn, in); err != nil {
		return nil, fmt.Errorf("%w: reading the initiator's first message: %v", ErrHandshake, err)
	}
	conn.SetDeadline(started.Add(handshakeTimeout))
	if _, _, _, err := hs.ReadMessage(nil, in); err != nil {
		return nil, fmt.Errorf("%w: initiator's first message: %v", ErrHandshake, err)
	}
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, fmt.Errorf("%w: sending: %v", ErrHandshake, err)
	}
	in = make([]byte, msg3Length)
	if _, err := io.ReadFull(conn, in); err != nil {
		return nil, fmt.Errorf("%w: reading the initiator's last message: %v", ErrHandshake, err)
	}
	_, recv, send, err := hs.ReadMessage(nil, in)
	if err != nil {
		return nil, fmt.Errorf("%w: initiator's last message: %v", ErrHandshake, err)
	}
	var peer [KeySize]byte
	copy(peer[:], hs.PeerStatic())
	if err := authorize(peer); err != nil {
		return nil, fmt.Errorf("%w: initiator %x refused: %v", ErrHandshake, peer, err)
	}
	return newConn(conn, frameSize, peer, send, recv), nil
}

func newHandshake(key Keypair, initiator bool) (*noise.HandshakeState, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      []byte(prologue),
		StaticKeypair: key,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	return hs, nil
}

func checkFrameSize(n int) error {
	if n < MinFrameSize || n > MaxFrameSize {
		return fmt.Errorf("wire: frame size %d, want %d to %d", n, MinFrameSize, MaxFrameSize)
	}
	return nil
}

// A link reads through a buffer of smallReadBuffer bytes, a few frames:
// a provider holds one link per connected client, and a 64 KiB buffer each
// was most of its memory with thousands of clients (BENCHMARKS.md). A busy
// link between nodes takes largeReadBuffer (UseLargeBuffers), which saves
// system calls when frames arrive in bursts.
const (
	smallReadBuffer = 4 << 10
	largeReadBuffer = 64 << 10
)

func newConn(conn net.Conn, frameSize int, peer [KeySize]byte, send, recv *noise.CipherState) *Conn {
	return &Conn{
		conn:      conn,
		frameSize: frameSize,
		peer:      peer,
		send:      send,
		recv:      recv,
		reader:    bufio.NewReaderSize(conn, smallReadBuffer),
		readBuf:   make([]byte, frameSize+tagSize),
		writeBuf:  make([]byte, 0, frameSize),
	}
}

// UseLargeBuffers gives a link between nodes a 64 KiB read buffer and
// 1 MiB socket buffers. Frames already buffered are kept: the large buffer
// reads through the small one.
func (c *Conn) UseLargeBuffers() {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.reader = bufio.NewReaderSize(c.reader, largeReadBuffer)
	if tcp, ok := c.conn.(*net.TCPConn); ok {
		tcp.SetReadBuffer(1 << 20)
		tcp.SetWriteBuffer(1 << 20)
	}
}

// Peer returns the other side's link key, as proven in the handshake.
func (c *Conn) Peer() [KeySize]byte { return c.peer }

// FrameSize returns the plaintext length of every frame on the link.
func (c *Conn) FrameSize() int { return c.frameSize }

// SetWriteTimeout bounds every later write: a peer that does not read
// makes the write fail after d (and the link must then be closed), rather
// than block the writer for ever. Zero means no bound.
func (c *Conn) SetWriteTimeout(d time.Duration) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.writeTimeout = d
}

// startWrite sets the write deadline; c.writeMu is held.
func (c *Conn) startWrite() {
	if c.writeTimeout > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
}

// WriteFrame pads, encrypts and sends one frame.
func (c *Conn) WriteFrame(f Frame) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	plain, err := appendFrame(c.writeBuf[:0], f, c.frameSize)
	if err != nil {
		return err
	}
	out, err := c.send.Encrypt(make([]byte, 0, c.frameSize+tagSize), nil, plain)
	if err != nil {
		return fmt.Errorf("wire: failed to encrypt a frame: %w", err)
	}
	c.startWrite()
	if _, err := c.conn.Write(out); err != nil {
		return fmt.Errorf("wire: failed to send a frame: %w", err)
	}
	return nil
}

// WriteFrames pads, encrypts and sends several frames with one write, which
// saves system calls when a queue has several waiting.
func (c *Conn) WriteFrames(frames []Frame) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := make([]byte, 0, len(frames)*(c.frameSize+tagSize))
	for _, f := range frames {
		plain, err := appendFrame(c.writeBuf[:0], f, c.frameSize)
		if err != nil {
			return err
		}
		if out, err = c.send.Encrypt(out, nil, plain); err != nil {
			return fmt.Errorf("wire: failed to encrypt a frame: %w", err)
		}
	}
	c.startWrite()
	if _, err := c.conn.Write(out); err != nil {
		return fmt.Errorf("wire: failed to send frames: %w", err)
	}
	return nil
}

// ReadFrame receives, decrypts and parses one frame. Its Body is valid until
// the next ReadFrame. An error wrapping [ErrMalformedFrame] means the peer
// sent something that is not a valid frame: close the link.
func (c *Conn) ReadFrame() (Frame, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if _, err := io.ReadFull(c.reader, c.readBuf); err != nil {
		return Frame{}, err
	}
	plain, err := c.recv.Decrypt(c.readBuf[:0], nil, c.readBuf)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: does not authenticate: %v", ErrMalformedFrame, err)
	}
	return ParseFrame(plain)
}

// SetReadDeadline sets the deadline for ReadFrame.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.conn.Close() }
