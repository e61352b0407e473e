package session

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// info is PQXDH's info parameter: the application, curve, hash and pqkem.
const info = "backchannel_CURVE25519_SHA-256_ML-KEM-768"

// KeySize is the length of the shared secret SK.
const KeySize = 32

// Initial is the key-agreement part of the initiator's first message: her
// identity key IK_A, her ephemeral key EK_A, which of the responder's
// prekeys she used, and the ML-KEM ciphertext CT.
type Initial struct {
	IdentityKey   [32]byte
	EphemeralKey  [32]byte
	PrekeyID      uint32
	PQPrekeyID    uint32
	KEMCiphertext [mlkem.CiphertextSize768]byte
}

// Errors of the key agreement.
var (
	// ErrReplay: the responder has already accepted an initial message
	// with this ephemeral key for this prekey.
	ErrReplay = errors.New("session: repeated initial message")
	// ErrUnknownPrekey: the initial message names a prekey the responder
	// does not have (rotated away, or never its own).
	ErrUnknownPrekey = errors.New("session: initial message for an unknown prekey")
)

// Initiate runs the initiator's side of PQXDH (§3.3) against the peer's
// card: it verifies the card's signatures, makes an ephemeral key (32 bytes
// from rand) and encapsulates to the ML-KEM prekey. It returns SK, the
// associated data AD = IK_A ‖ IK_B, and the Initial to send.
func Initiate(rand io.Reader, self *identity.Identity, peer *identity.Card) (sk [KeySize]byte, ad []byte, init Initial, err error) {
	if err := peer.Verify(); err != nil {
		return sk, nil, init, err
	}
	var seed [32]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return sk, nil, init, fmt.Errorf("session: failed to read randomness: %w", err)
	}
	ek, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return sk, nil, init, fmt.Errorf("session: ephemeral key: %w", err)
	}
	pq, err := mlkem.NewEncapsulationKey768(peer.PQPrekey.Key[:])
	if err != nil {
		return sk, nil, init, fmt.Errorf("session: peer's ML-KEM prekey: %w", err)
	}
	ss, ct := pq.Encapsulate()
	sk, err = initiatorSecret(self.DH, ek, peer, ss)
	clear(ss)
	if err != nil {
		return sk, nil, init, err
	}
	copy(init.IdentityKey[:], self.DH.PublicKey().Bytes())
	copy(init.EphemeralKey[:], ek.PublicKey().Bytes())
	init.PrekeyID, init.PQPrekeyID = peer.Prekey.ID, peer.PQPrekey.ID
	copy(init.KEMCiphertext[:], ct)
	return sk, associatedData(init.IdentityKey, peer.DHKey), init, nil
}

// initiatorSecret computes SK = KDF(DH1 ‖ DH2 ‖ DH3 ‖ SS) with
// DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B).
func initiatorSecret(ik, ek *ecdh.PrivateKey, peer *identity.Card, ss []byte) ([KeySize]byte, error) {
	ikB, err := ecdh.X25519().NewPublicKey(peer.DHKey[:])
	if err != nil {
		return [KeySize]byte{}, fmt.Errorf("session: peer's identity key: %w", err)
	}
	spkB, err := ecdh.X25519().NewPublicKey(peer.Prekey.Key[:])
	if err != nil {
		return [KeySize]byte{}, fmt.Errorf("session: peer's prekey: %w", err)
	}
	return agree([]dhPair{{ik, spkB}, {ek, ikB}, {ek, spkB}}, ss)
}

// Respond runs the responder's side of PQXDH (§3.4) with the prekeys the
// initial message names (current, or retired and still in their grace
// period): it refuses a repeated initial message and records this one in
// guard (see [Guard]), then computes SK and AD as the initiator did. Accept
// does the same but records the message only once its first message
// decrypts.
func Respond(self *identity.Identity, init *Initial, guard *Guard) (sk [KeySize]byte, ad []byte, err error) {
	if guard.contains(init.PrekeyID, init.EphemeralKey) {
		return sk, nil, ErrReplay
	}
	if sk, ad, err = respond(self, init); err != nil {
		return sk, nil, err
	}
	guard.record(init.PrekeyID, init.EphemeralKey)
	return sk, ad, nil
}

// respond computes the responder's SK and AD.
func respond(self *identity.Identity, init *Initial) (sk [KeySize]byte, ad []byte, err error) {
	prekey, pqPrekey, ok := self.Prekeys(init.PrekeyID, init.PQPrekeyID)
	if !ok {
		return sk, nil, fmt.Errorf("%w: prekeys %d and %d, current %d and %d", ErrUnknownPrekey, init.PrekeyID, init.PQPrekeyID, self.Prekey.ID, self.PQPrekey.ID)
	}
	ikA, err := ecdh.X25519().NewPublicKey(init.IdentityKey[:])
	if err != nil {
		return sk, nil, fmt.Errorf("session: initiator's identity key: %w", err)
	}
	ekA, err := ecdh.X25519().NewPublicKey(init.EphemeralKey[:])
	if err != nil {
		return sk, nil, fmt.Errorf("session: initiator's ephemeral key: %w", err)
	}
	ss, err := pqPrekey.Key.Decapsulate(init.KEMCiphertext[:])
	if err != nil {
		return sk, nil, fmt.Errorf("session: ML-KEM ciphertext: %w", err)
	}
	sk, err = agree([]dhPair{{prekey.Key, ikA}, {self.DH, ekA}, {prekey.Key, ekA}}, ss)
	clear(ss)
	if err != nil {
		return sk, nil, err
	}
	var ikB [32]byte
	copy(ikB[:], self.DH.PublicKey().Bytes())
	return sk, associatedData(init.IdentityKey, ikB), nil
}

// dhPair is one Diffie-Hellman computation of the agreement.
type dhPair struct {
	priv *ecdh.PrivateKey
	pub  *ecdh.PublicKey
}

// agree computes the DH values in order and SK = KDF(DH1 ‖ ... ‖ SS).
func agree(pairs []dhPair, ss []byte) ([KeySize]byte, error) {
	km := make([]byte, 0, 3*32+len(ss))
	defer clear(km)
	for i, p := range pairs {
		dh, err := p.priv.ECDH(p.pub)
		if err != nil {
			return [KeySize]byte{}, fmt.Errorf("session: DH%d: %w", i+1, err)
		}
		km = append(km, dh...)
		clear(dh)
	}
	km = append(km, ss...)
	return kdf(km)
}

// kdf is PQXDH's KDF (§2.2): 32 bytes of HKDF-SHA-256 with input key
// material F ‖ KM, F being 32 0xFF bytes (for X25519), a salt of 32 zero
// bytes, and info.
func kdf(km []byte) ([KeySize]byte, error) {
	var out [KeySize]byte
	ikm := make([]byte, 32, 32+len(km))
	for i := range ikm[:32] {
		ikm[i] = 0xff
	}
	ikm = append(ikm, km...)
	defer clear(ikm)
	key, err := hkdf.Key(sha256.New, ikm, make([]byte, sha256.Size), info, KeySize)
	if err != nil {
		return out, fmt.Errorf("session: KDF: %w", err)
	}
	copy(out[:], key)
	clear(key)
	return out, nil
}

// associatedData is AD = EncodeEC(IK_A) ‖ EncodeEC(IK_B).
func associatedData(ikA, ikB [32]byte) []byte {
	return append(append(make([]byte, 0, 64), ikA[:]...), ikB[:]...)
}

// Guard remembers the ephemeral keys of accepted initial messages, per
// prekey, so that a replayed initial message is refused. The responder keeps
// it for as long as the prekey lives, across restarts (it encodes with
// MarshalBinary), and forgets a prekey's entries when it erases the prekey.
// It is not safe for concurrent use.
type Guard struct {
	seen map[uint32]map[[32]byte]struct{}
}

// contains reports whether the guard has seen this ephemeral key for this
// prekey.
func (g *Guard) contains(prekey uint32, ephemeral [32]byte) bool {
	_, ok := g.seen[prekey][ephemeral]
	return ok
}

// record remembers an accepted ephemeral key for a prekey.
func (g *Guard) record(prekey uint32, ephemeral [32]byte) {
	if g.seen == nil {
		g.seen = map[uint32]map[[32]byte]struct{}{}
	}
	if g.seen[prekey] == nil {
		g.seen[prekey] = map[[32]byte]struct{}{}
	}
	g.seen[prekey][ephemeral] = struct{}{}
}

// Forget drops what the guard remembers for an erased prekey.
func (g *Guard) Forget(prekey uint32) { delete(g.seen, prekey) }
