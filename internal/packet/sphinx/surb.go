package sphinx

import (
	"fmt"
	"io"

	"github.com/backchannel/backchannel/internal/packet/lioness"
)

// NewSURB makes a single-use reply block for path, whose last hop must carry
// a [SURBReply] command (and normally a [Recipient]: the creator's mailbox).
// It returns the SURB, to give to whoever may reply, and the decryption token,
// which the creator keeps secret to read the reply with
// [Format.DecryptSURBPayload] and wipes afterwards.
//
// The SURB is header ‖ first hop's ID ‖ reply key (176 bytes: a LIONESS key
// and IV). The token is, for hops n−1 down to 0, the hop's LIONESS key and
// IV, then the reply key: 176·(n+1) bytes.
//
// It reads from rand, in this order, the reply key, then what
// [Format.NewPacket] reads.
func (f *Format) NewSURB(rand io.Reader, path []PathHop) (surb, token []byte, err error) {
	g := f.geometry
	if err := checkPath(g, path, true); err != nil {
		return nil, nil, err
	}
	var replyKey [ReplyKeyLength]byte
	defer clear(replyKey[:])
	if _, err := io.ReadFull(rand, replyKey[:]); err != nil {
		return nil, nil, fmt.Errorf("sphinx: failed to read the SURB reply key: %w", err)
	}
	surb = make([]byte, g.SURBLength())
	keys, err := f.newHeader(rand, path, surb[:g.HeaderLength()])
	if err != nil {
		return nil, nil, err
	}
	defer wipeKeys(keys)
	copy(surb[g.HeaderLength():], path[0].ID[:])
	copy(surb[g.HeaderLength()+NodeIDLength:], replyKey[:])

	token = make([]byte, 0, ReplyKeyLength*(len(path)+1))
	for i := len(path) - 1; i >= 0; i-- {
		token = append(token, keys[i].payloadKeyMaterial()...)
	}
	token = append(token, replyKey[:]...)
	return surb, token, nil
}

// NewPacketFromSURB makes the reply packet for surb carrying message (at most
// UserPayloadLength bytes, zero-padded to it, so that a reply is as long as
// any packet), and returns it with the node it must be sent to.
func (f *Format) NewPacketFromSURB(surb, message []byte) (packet []byte, firstHop NodeID, err error) {
	g := f.geometry
	if len(surb) != g.SURBLength() {
		return nil, firstHop, fmt.Errorf("%w: %d bytes, want %d", ErrSURB, len(surb), g.SURBLength())
	}
	if len(message) > g.UserPayloadLength {
		return nil, firstHop, fmt.Errorf("sphinx: message of %d bytes, more than the %d a packet carries", len(message), g.UserPayloadLength)
	}
	headerLength := g.HeaderLength()
	copy(firstHop[:], surb[headerLength:])
	key := (*[lioness.KeySize]byte)(surb[headerLength+NodeIDLength:])
	iv := (*[lioness.IVSize]byte)(surb[headerLength+NodeIDLength+lioness.KeySize:])

	packet = make([]byte, g.PacketLength())
	copy(packet, surb[:headerLength])
	payload := packet[headerLength:]
	copy(payload[PayloadTagLength:], message)
	if err := lioness.Encrypt(key, iv, payload); err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	return packet, firstHop, nil
}

// DecryptSURBPayload reads a reply: payload is what the last hop returned for
// a packet made from the SURB whose token is given. It re-encrypts with each
// hop's keys (undoing their decryptions), decrypts with the reply key, checks
// the zero tag and returns the message, zero-padded as it was sent. A
// modified payload gives an error wrapping [ErrPayloadTag]. payload is not
// modified.
func (f *Format) DecryptSURBPayload(token, payload []byte) ([]byte, error) {
	hops := len(token)/ReplyKeyLength - 1
	if len(token)%ReplyKeyLength != 0 || hops < 1 || hops > f.geometry.MaxHops {
		return nil, fmt.Errorf("%w: decryption token of %d bytes, want 176·(n+1) for 1 ≤ n ≤ %d", ErrSURB, len(token), f.geometry.MaxHops)
	}
	if len(payload) < lioness.MinBlockSize {
		return nil, fmt.Errorf("%w: reply payload of %d bytes, want at least %d", ErrPacketTooShort, len(payload), lioness.MinBlockSize)
	}
	out := append([]byte(nil), payload...)
	for i := 0; i <= hops; i++ {
		entry := token[i*ReplyKeyLength : (i+1)*ReplyKeyLength]
		key := (*[lioness.KeySize]byte)(entry[:lioness.KeySize])
		iv := (*[lioness.IVSize]byte)(entry[lioness.KeySize:])
		var err error
		if i < hops {
			err = lioness.Encrypt(key, iv, out)
		} else {
			err = lioness.Decrypt(key, iv, out)
		}
		if err != nil {
			panic("sphinx: internal error: " + err.Error())
		}
	}
	if !isZero(out[:PayloadTagLength]) {
		clear(out)
		return nil, ErrPayloadTag
	}
	return out[PayloadTagLength:], nil
}
