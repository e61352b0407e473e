package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// Session is one side of an established session: the ratchet, the
// associated data from PQXDH, the peer's current card, and the envelope
// keys.
type Session struct {
	Ratchet  *Ratchet
	AD       []byte
	Peer     *identity.Card
	Envelope EnvelopeKeys
}

// Kind says what a session message carries.
type Kind uint8

const (
	// KindData is application data (the layers above define its contents).
	KindData Kind = 1
	// KindCardUpdate carries the sender's new card after a prekey rotation.
	KindCardUpdate Kind = 2
)

// Sizes of a sealed message: its encrypted header, and what Seal adds to a
// body (the kind byte and the AEAD tag).
const (
	EncryptedHeaderSize = chacha20poly1305.NonceSizeX + headerLen + chacha20poly1305.Overhead
	SealOverhead        = 1 + chacha20poly1305.Overhead
)

// Message is an encrypted session message: the ratchet's encrypted header
// and ciphertext. Its plaintext is the kind byte followed by the body.
type Message struct {
	Header     []byte
	Ciphertext []byte
}

// Start begins a session with the owner of peer's card (PQXDH as
// initiator). The Initial must travel with the first message.
func Start(rand io.Reader, self *identity.Identity, peer *identity.Card) (*Session, *Initial, error) {
	sk, ad, init, err := Initiate(rand, self, peer)
	if err != nil {
		return nil, nil, err
	}
	defer clear(sk[:])
	keys, err := envelopeKeys(sk, true)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewInitiatorRatchet(rand, sk, peer.Prekey.Key[:])
	if err != nil {
		return nil, nil, err
	}
	return &Session{Ratchet: r, AD: ad, Peer: peer, Envelope: keys}, &init, nil
}

// Accept answers an initial message: PQXDH as responder, then the first
// message must decrypt under the new session, or nothing is kept (PQXDH
// §3.4: on failure the responder deletes SK). peer is the initiator's card,
// which the caller looked up by init.IdentityKey among its contacts.
func Accept(rand io.Reader, self *identity.Identity, guard *Guard, peer *identity.Card, init *Initial, first Message) (*Session, Kind, []byte, error) {
	if !bytes.Equal(peer.DHKey[:], init.IdentityKey[:]) {
		return nil, 0, nil, errors.New("session: the initial message is not from this contact")
	}
	prekey, _, ok := self.Prekeys(init.PrekeyID, init.PQPrekeyID)
	if !ok {
		return nil, 0, nil, fmt.Errorf("%w: prekeys %d and %d", ErrUnknownPrekey, init.PrekeyID, init.PQPrekeyID)
	}
	// The initial message is recorded as seen only once its first message
	// decrypts: a copy damaged on the way must not make the genuine one,
	// retransmitted, look like a replay.
	if guard.contains(init.PrekeyID, init.EphemeralKey) {
		return nil, 0, nil, ErrReplay
	}
	sk, ad, err := respond(self, init)
	if err != nil {
		return nil, 0, nil, err
	}
	defer clear(sk[:])
	keys, err := envelopeKeys(sk, false)
	if err != nil {
		return nil, 0, nil, err
	}
	r, err := NewResponderRatchet(rand, sk, prekey.Key)
	if err != nil {
		return nil, 0, nil, err
	}
	s := &Session{Ratchet: r, AD: ad, Peer: peer, Envelope: keys}
	kind, body, err := s.Open(first)
	if err != nil {
		s.Ratchet.wipeChains()
		return nil, 0, nil, err
	}
	guard.record(init.PrekeyID, init.EphemeralKey)
	return s, kind, body, nil
}

// Seal encrypts a message of the given kind.
func (s *Session) Seal(kind Kind, body []byte) (Message, error) {
	h, c, err := s.Ratchet.Encrypt(append([]byte{byte(kind)}, body...), s.AD)
	return Message{Header: h, Ciphertext: c}, err
}

// Open decrypts a message. A card update is applied before it is returned:
// the new card must verify and carry the same identity keys as the old one
// (only prekeys and mailbox may change), or it is refused.
func (s *Session) Open(m Message) (Kind, []byte, error) {
	plain, err := s.Ratchet.Decrypt(m.Header, m.Ciphertext, s.AD)
	if err != nil {
		return 0, nil, err
	}
	if len(plain) == 0 {
		return 0, nil, fmt.Errorf("%w: empty session message", ErrMalformed)
	}
	kind, body := Kind(plain[0]), plain[1:]
	switch kind {
	case KindData:
	case KindCardUpdate:
		card, err := identity.ParseCard(body)
		if err != nil {
			return 0, nil, err
		}
		if card.DHKey != s.Peer.DHKey || !card.SigningKey.Equal(s.Peer.SigningKey) {
			return 0, nil, fmt.Errorf("%w: a card update with other identity keys", identity.ErrCard)
		}
		s.Peer = card
	default:
		return 0, nil, fmt.Errorf("%w: message kind %d", ErrMalformed, kind)
	}
	return kind, body, nil
}
