// Package wire is the link protocol between backchannel nodes, and between a
// client and its provider, followed by fixed-size frames.
//
// A link comes in two versions:
//
//   - version 2, post-quantum (the default; see postquantum.go): TLS 1.3
//     with crypto/tls, restricted to the hybrid X25519MLKEM768 key
//     exchange, carries everything; inside it each side proves its X25519
//     link key in a Noise XX handshake (Noise_XX_25519_ChaChaPoly_BLAKE2b,
//     github.com/flynn/noise) whose prologue is a TLS exporter value, so
//     that the Noise handshake authenticates this very TLS session. Frames
//     are TLS application data.
//   - version 1, classical (classical.go): the Noise handshake alone over
//     the stream, frames encrypted with its cipher states. Spoken by the
//     previous release; accepted and dialled only while a network moves
//     (see [Acceptor] and [DialClassical]).
//
// Either way each side checks the other's link key against what it expects
// (the network document, or a provider's account table).
//
// Every frame on a link has the same length, whatever it carries, so an
// observer of the link learns nothing from sizes. A frame that fails to
// decrypt or parse ends the link (the caller closes it and, as a dialer,
// reconnects); it never affects other links.
//
// It does not reconnect, queue or retransmit: those belong to the node's
// peer management, which uses [Dial] and [Acceptor.Accept].
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// KeySize is the length of an X25519 link key.
const KeySize = 32

// handshakeTimeout bounds how long a peer may take to complete a handshake,
// and firstMessageTimeout how long the responder waits for the initiator's
// first bytes (sent as soon as it connects): a connection that sends
// nothing holds the responder's resources for no longer.
const (
	handshakeTimeout    = 10 * time.Second
	firstMessageTimeout = 2 * time.Second
)

// Link versions.
const (
	// VersionClassical is the link of the previous release: Noise over
	// X25519 alone.
	VersionClassical = 1
	// VersionPostQuantum is TLS 1.3 with X25519MLKEM768 around a
	// channel-bound Noise handshake.
	VersionPostQuantum = 2
)

// ErrHandshake is wrapped by every handshake failure.
var ErrHandshake = errors.New("wire: handshake failed")

// ErrClassicalRefused is wrapped (with ErrHandshake) by the failure of a
// handshake that an [Acceptor] refused because the peer offered no
// post-quantum key exchange: a version 1 link while classical links are
// not taken, or a TLS handshake without X25519MLKEM768.
var ErrClassicalRefused = errors.New("the peer offers no post-quantum key exchange")

// ErrPeerRefused is wrapped (with ErrHandshake) by [Dial]'s failure when
// the peer answered with a TLS alert: it refused what this side offered,
// as a node of a later release that takes only a later link version would.
var ErrPeerRefused = errors.New("the peer refused the handshake")

// ErrPeerClassical is wrapped (with ErrHandshake) by [Dial]'s failure when
// the peer answered the TLS handshake with something that is not TLS: a
// node or provider of the previous release, which speaks link version 1
// only. While classical links are allowed, the caller may dial again with
// [DialClassical].
var ErrPeerClassical = errors.New("the peer does not speak post-quantum links (link version 2)")

// Conn is an established link. ReadFrame must be called from one goroutine at
// a time; WriteFrame may be called concurrently with it and with itself.
type Conn struct {
	raw       net.Conn // the TCP connection, for socket options and closing
	stream    net.Conn // what frames travel on: the TLS connection, or raw
	version   int
	frameSize int
	wireSize  int // bytes of one frame on the stream
	peer      [KeySize]byte

	readMu  sync.Mutex
	reader  *bufio.Reader
	recv    *noise.CipherState // version 1 only
	readBuf []byte

	writeMu      sync.Mutex
	send         *noise.CipherState // version 1 only
	writeBuf     []byte
	writeTimeout time.Duration // guarded by writeMu
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

func newConn(raw, stream net.Conn, version, frameSize int, peer [KeySize]byte, send, recv *noise.CipherState) *Conn {
	wireSize := frameSize
	if send != nil {
		wireSize += tagSize
	}
	return &Conn{
		raw:       raw,
		stream:    stream,
		version:   version,
		frameSize: frameSize,
		wireSize:  wireSize,
		peer:      peer,
		send:      send,
		recv:      recv,
		reader:    bufio.NewReaderSize(stream, smallReadBuffer),
		readBuf:   make([]byte, wireSize),
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
	if tcp, ok := c.raw.(*net.TCPConn); ok {
		tcp.SetReadBuffer(1 << 20)
		tcp.SetWriteBuffer(1 << 20)
	}
}

// Peer returns the other side's link key, as proven in the handshake.
func (c *Conn) Peer() [KeySize]byte { return c.peer }

// Version returns the link's version: [VersionPostQuantum] or
// [VersionClassical].
func (c *Conn) Version() int { return c.version }

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
		c.raw.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
}

// WriteFrame pads, encrypts and sends one frame.
func (c *Conn) WriteFrame(f Frame) error {
	return c.WriteFrames([]Frame{f})
}

// WriteFrames pads, encrypts and sends several frames with one write, which
// saves system calls when a queue has several waiting.
func (c *Conn) WriteFrames(frames []Frame) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := make([]byte, 0, len(frames)*c.wireSize)
	for _, f := range frames {
		if c.send == nil {
			var err error
			if out, err = appendFrame(out, f, c.frameSize); err != nil {
				return err
			}
			continue
		}
		plain, err := appendFrame(c.writeBuf[:0], f, c.frameSize)
		if err != nil {
			return err
		}
		if out, err = c.send.Encrypt(out, nil, plain); err != nil {
			return fmt.Errorf("wire: failed to encrypt a frame: %w", err)
		}
	}
	c.startWrite()
	if _, err := c.stream.Write(out); err != nil {
		return fmt.Errorf("wire: failed to send %d frames: %w", len(frames), err)
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
		if recordRefused(err) {
			return Frame{}, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
		}
		return Frame{}, err
	}
	if c.recv == nil {
		return ParseFrame(c.readBuf)
	}
	plain, err := c.recv.Decrypt(c.readBuf[:0], nil, c.readBuf)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: does not authenticate: %v", ErrMalformedFrame, err)
	}
	return ParseFrame(plain)
}

// SetReadDeadline sets the deadline for ReadFrame.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.stream.SetReadDeadline(t) }

// Close closes the connection at once. A post-quantum link sends no TLS
// close_notify: that write could block on a peer that does not read, and
// every frame is authenticated, so a truncated link loses nothing unnoticed.
func (c *Conn) Close() error { return c.raw.Close() }
