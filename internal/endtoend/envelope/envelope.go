// Package envelope is the end-to-end layer inside a Sphinx payload: what a
// client puts in the user payload of every packet it addresses to a mailbox,
// and what the SURB replies it gets back carry.
//
// The recipient's provider removes the last Sphinx layer and stores the
// payload: it must see a random blob of one size whether it holds a loop
// packet, the first message of a session or a fragment of a file, and learn
// neither the sender nor the session — also later, once it can break X25519.
// A payload has one of three forms, told apart by the recipient alone:
//
//	keyed (version 2):  u8 2 | nonce [24] | XChaCha20-Poly1305 of the Contents
//	sealed (version 2): u8 2 | HPKE enc [1120] | HPKE ciphertext of the Contents
//	classical (version 1): u8 1 | HPKE enc [32] | HPKE ciphertext of the Contents
//
// each zero-padded to the payload's size before encryption.
//
// The keyed form is for a session both sides hold and for the client's own
// loops: a 32-byte key per direction of a session, derived from the
// session's PQXDH secret (session.EnvelopeKeys), so as post-quantum as the
// session; the recipient finds which contact a payload is from by trying
// each contact's key (an AEAD tag check each), so nothing in the payload
// names the session. Its Contents do not carry the sender's key.
//
// The sealed form is for a session's first messages, which carry the PQXDH
// Initial: HPKE (RFC 9180, base mode) with the MLKEM768-X25519 (X-Wing) KEM
// of draft-ietf-hpke-pq, HKDF-SHA256 and ChaCha20-Poly1305 (crypto/hpke), to
// the recipient's signed prekeys — the ML-KEM-768 prekey and the X25519
// prekey of its card, as one X-Wing key. Deviation: these prekeys also serve
// PQXDH. A key of its own would add 1,248 bytes to every card (key and
// signature) and a new card layout; the two uses derive their secrets with
// different functions (X-Wing's SHA3 combiner here, PQXDH's HKDF there) from
// a KEM that is secure against chosen ciphertexts, and the prekeys rotate,
// so old sealed payloads stop opening once their prekeys are erased. The
// X25519 ephemeral key's top bit, always 0 in an encoding, is set at random
// (and cleared before opening), so that it does not mark the form. The
// ML-KEM ciphertext is not uniform (its coefficients are compressed from
// integers modulo 3,329): a sealed payload can be told from a keyed one
// with some advantage, measured in TestSealedFormDistinguisher and
// described in docs/client.md.
//
// The classical form is the previous release's: HPKE with DHKEM(X25519) to
// the recipient's X25519 identity key. It is still opened, and sealed only
// to a contact whose software does not open version 2, or when a sealed
// payload does not fit the network's geometry.
//
// Acknowledgements come back one of three ways. A KindMessage names itself
// by a random AckID, and its recipient acknowledges it with a KindAck in an
// ordinary forward packet to the sender's mailbox, keyed, or — if the
// sender's software reads them — in a KindAckBatch, a packet of the
// recipient's ack channel to the sender, which carries every ID owed and
// is sent on the recipient's schedule whether any is owed or not: at the
// sender's provider, messages, acks and loops all arrive as forward
// packets of one form. A KindSession (an older release's) carries a SURB,
// and the SURB reply's payload, readable only by the SURB's creator,
// carries an [Ack].
//
// It does not encrypt session messages (the session package does) or cut
// messages into fragments (the fragment package does).
package envelope

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Payload versions: the first byte of every payload.
const (
	// VersionClassical is the classical form's.
	VersionClassical = 1
	// Version is the keyed and sealed forms'.
	Version = 2
)

const (
	// LoopIDSize is the length of a loop packet's identifier.
	LoopIDSize = 16
	// KeySize is the length of an identity key and of a keyed form's key.
	KeySize = 32
	// tagLength is ChaCha20-Poly1305's tag length.
	tagLength = 16
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("envelope: malformed")

// ErrOpen: a payload does not open under the keys (not for us, or damaged).
var ErrOpen = errors.New("envelope: payload does not open")

// ErrTooLong: the contents do not fit the payload in the form asked for.
var ErrTooLong = errors.New("envelope: contents do not fit the payload")

// Kind says what Contents carry.
type Kind uint8

const (
	// KindLoop is a loop cover packet the client sent to itself.
	KindLoop Kind = 1
	// KindSession is a session message with a SURB for its
	// acknowledgement: how the previous release acknowledges, kept for
	// contacts on it.
	KindSession Kind = 2
	// KindAck is the acknowledgement of a KindMessage: a forward packet
	// from its recipient to its sender's mailbox, keyed with the session's
	// envelope key for that direction, naming the message by its AckID.
	KindAck Kind = 3
	// KindMessage is a session message whose acknowledgement comes back as
	// a KindAck forward packet, or in a KindAckBatch.
	KindMessage Kind = 4
	// KindAckBatch is a packet of a contact's ack channel: keyed like a
	// KindAck, it acknowledges every KindMessage its AckIDs name — none,
	// in the packets the channel sends when nothing is owed.
	KindAckBatch Kind = 5
)

// AckIDSize is the length of an ack ID: random, drawn per transmission.
const AckIDSize = 16

// Contents are what a sealed payload holds.
type Contents struct {
	Kind Kind
	// LoopID identifies a loop packet to the client that sent it.
	LoopID [LoopIDSize]byte
	// Sender is the sender's X25519 identity key: which contact's session
	// the message belongs to (it proves nothing; the session does).
	Sender [KeySize]byte
	// SURB is the single-use reply block for the acknowledgement
	// (KindSession).
	SURB []byte
	// AckID names the transmission a KindMessage is, and which a KindAck
	// acknowledges.
	AckID [AckIDSize]byte
	// AckIDs are the transmissions a KindAckBatch acknowledges.
	AckIDs [][AckIDSize]byte
	// Initial is the encoded session.Initial that sets the session up, if
	// this message does.
	Initial []byte
	// Header and Ciphertext are the session message.
	Header, Ciphertext []byte
}

// encode encodes the contents; the keyed form's leave the sender out.
func (c *Contents) encode(withSender bool) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(c.Kind))
	switch c.Kind {
	case KindLoop:
		b.AddBytes(c.LoopID[:])
	case KindAck:
		b.AddBytes(c.AckID[:])
	case KindAckBatch:
		if len(c.AckIDs) > 0xffff {
			return nil, fmt.Errorf("envelope: an ack batch of %d IDs", len(c.AckIDs))
		}
		b.AddUint16(uint16(len(c.AckIDs)))
		for _, id := range c.AckIDs {
			b.AddBytes(id[:])
		}
	case KindSession, KindMessage:
		if withSender {
			b.AddBytes(c.Sender[:])
		}
		fields := [][]byte{c.SURB, c.Initial, c.Header, c.Ciphertext}
		if c.Kind == KindMessage {
			b.AddBytes(c.AckID[:])
			fields = fields[1:]
		}
		for _, field := range fields {
			if len(field) > 0xffff {
				return nil, fmt.Errorf("envelope: a field of %d bytes", len(field))
			}
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(field) })
		}
	default:
		return nil, fmt.Errorf("envelope: unknown kind %d", c.Kind)
	}
	return b.Bytes()
}

// decodeContents decodes contents followed by zero padding, strictly.
func decodeContents(data []byte, withSender bool) (Contents, error) {
	s := cryptobyte.String(data)
	var c Contents
	var kind uint8
	if !s.ReadUint8(&kind) {
		return c, fmt.Errorf("%w: empty contents", ErrMalformed)
	}
	c.Kind = Kind(kind)
	switch c.Kind {
	case KindLoop:
		if !s.CopyBytes(c.LoopID[:]) {
			return c, fmt.Errorf("%w: truncated loop packet", ErrMalformed)
		}
	case KindAck:
		if !s.CopyBytes(c.AckID[:]) {
			return c, fmt.Errorf("%w: truncated ack", ErrMalformed)
		}
	case KindAckBatch:
		var n uint16
		if !s.ReadUint16(&n) || len(s) < int(n)*AckIDSize {
			return c, fmt.Errorf("%w: truncated ack batch", ErrMalformed)
		}
		c.AckIDs = make([][AckIDSize]byte, n)
		for i := range c.AckIDs {
			s.CopyBytes(c.AckIDs[i][:])
		}
	case KindSession, KindMessage:
		if withSender && !s.CopyBytes(c.Sender[:]) {
			return c, fmt.Errorf("%w: truncated session message", ErrMalformed)
		}
		fields := []*[]byte{&c.SURB, &c.Initial, &c.Header, &c.Ciphertext}
		if c.Kind == KindMessage {
			if !s.CopyBytes(c.AckID[:]) {
				return c, fmt.Errorf("%w: truncated session message", ErrMalformed)
			}
			fields = fields[1:]
		}
		for _, field := range fields {
			var v cryptobyte.String
			if !s.ReadUint16LengthPrefixed(&v) {
				return c, fmt.Errorf("%w: truncated session message", ErrMalformed)
			}
			if len(v) > 0 {
				*field = append([]byte(nil), v...)
			}
		}
	default:
		return c, fmt.Errorf("%w: kind %d", ErrMalformed, kind)
	}
	for _, x := range s {
		if x != 0 {
			return c, fmt.Errorf("%w: padding is not zero", ErrMalformed)
		}
	}
	return c, nil
}

// pad encodes c padded to room bytes.
func pad(c *Contents, withSender bool, room, size int) ([]byte, error) {
	plain, err := c.encode(withSender)
	if err != nil {
		return nil, err
	}
	if len(plain) > room {
		return nil, fmt.Errorf("%w: contents of %d bytes, a %d-byte payload with room for %d", ErrTooLong, len(plain), size, room)
	}
	padded := make([]byte, room)
	copy(padded, plain)
	return padded, nil
}

// sessionFields is what a session message's contents take besides the
// session message, the SURB and the Initial: the kind and four length
// prefixes.
const sessionFields = 1 + 4*2

// SessionRoom is how many bytes of session message (header and ciphertext
// together) fit a payload of the given size next to a SURB of surbLength
// bytes and an Initial of initialLength bytes (0 for none), in the form
// that leaves the least of the forms a session message may take with it:
// the sealed form with an Initial, else the classical form (which a
// contact of the previous release gets; the keyed form leaves more).
func SessionRoom(size, surbLength, initialLength int) int {
	overhead := ClassicalOverhead
	if initialLength > 0 {
		overhead = SealedOverhead
	}
	return size - overhead - sessionFields - KeySize - surbLength - initialLength
}

// ClassicalSessionRoom is SessionRoom in the classical form, which a
// first message takes when the sealed form does not fit the geometry.
func ClassicalSessionRoom(size, surbLength, initialLength int) int {
	return size - ClassicalOverhead - sessionFields - KeySize - surbLength - initialLength
}

// ackBatchFields is what a KindAckBatch's contents take besides its IDs:
// the kind and the count.
const ackBatchFields = 1 + 2

// AckBatchCapacity is how many ack IDs a KindAckBatch holds in a payload
// of the given size (in the keyed form, the only one it takes).
func AckBatchCapacity(size int) int {
	return max(0, (size-KeyedOverhead-ackBatchFields)/AckIDSize)
}

// messageFields is what a KindMessage's contents take besides the session
// message and the Initial: the kind, the ack ID and three length prefixes.
const messageFields = 1 + AckIDSize + 3*2

// MessageRoom is SessionRoom for a KindMessage, whose ack needs no SURB:
// the room a session message has in a payload of the given size next to an
// Initial of initialLength bytes (0 for none), in the sealed form with an
// Initial, else the classical form's (the keyed form leaves more).
func MessageRoom(size, initialLength int) int {
	overhead := ClassicalOverhead
	if initialLength > 0 {
		overhead = SealedOverhead
	}
	return size - overhead - messageFields - KeySize - initialLength
}
