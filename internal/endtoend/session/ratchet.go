package session

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/backchannel/backchannel/internal/base/clock"
)

// The Double Ratchet with header encryption, as Signal specifies it ("The
// Double Ratchet Algorithm", revision 1, 2016-11-20, §3 and §4), with:
//
//   - GENERATE_DH and DH: X25519 (crypto/ecdh);
//   - KDF_RK_HE: HKDF-SHA-256 with RK as salt and the DH output as input,
//     96 bytes: new RK, chain key, next header key (§5.2 recommends HKDF);
//   - KDF_CK: HMAC-SHA-256 of the chain key with 0x01 (message key) and
//     0x02 (next chain key), as §5.2 recommends;
//   - ENCRYPT: ChaCha20-Poly1305 under a key and nonce HKDF-derived from the
//     message key, which is used once (§5.2 allows an AEAD scheme; the
//     recommended AES-CBC plus HMAC is not needed with one);
//   - HENCRYPT: XChaCha20-Poly1305 with a random 24-byte nonce, since a
//     header key encrypts many headers (§4.2 asks for that).
//
// Nothing is signed per message: authenticity comes from the AEAD keys only
// both parties hold, which keeps messages deniable.

const (
	// MaxSkip is the most message keys one message may make a receiver
	// skip and store (§3.2's MAX_SKIP).
	MaxSkip = 1000
	// MaxStoredSkipped bounds the skipped message keys kept in all; the
	// oldest are dropped first. With MaxSkip it keeps a peer from making a
	// receiver store keys without end.
	MaxStoredSkipped = 2000

	rootInfo    = "backchannel ratchet root v1"
	messageInfo = "backchannel ratchet message v1"
	headerLen   = 32 + 4 + 4
)

// Errors of the ratchet.
var (
	// ErrDecrypt: a message does not decrypt: not for this session,
	// modified, or already read (its key is gone).
	ErrDecrypt = errors.New("session: message does not decrypt")
	// ErrTooManySkipped: a message would make the receiver skip more than
	// MaxSkip message keys.
	ErrTooManySkipped = errors.New("session: message skips too many keys")
)

// Ratchet is one side of a session's Double Ratchet state.
type Ratchet struct {
	dhs        *ecdh.PrivateKey
	dhr        []byte // nil before the first message is received
	rk         [32]byte
	cks, ckr   []byte // nil when absent
	ns, nr, pn uint32
	hks, hkr   []byte // nil when absent
	nhks, nhkr []byte
	skipped    []skippedKey // oldest first
	rand       io.Reader
	clock      clock.Clock
}

type skippedKey struct {
	hk     []byte
	n      uint32
	mk     [32]byte
	stored time.Time // when it was skipped, for ExpireSkipped
}

// headerKeys derives the two initial header keys from SK: the initiator's
// sending header key and the responder's first "next" header key (§4.3's
// shared_hka and shared_nhkb).
func headerKeys(sk [KeySize]byte) (hka, nhkb []byte, err error) {
	out, err := hkdf.Key(sha256.New, sk[:], nil, "backchannel ratchet header keys v1", 64)
	if err != nil {
		return nil, nil, err
	}
	return out[:32], out[32:], nil
}

// NewInitiatorRatchet starts the initiator's ratchet (§4.3
// RatchetInitAliceHE) from SK and the responder's ratchet public key (its
// signed prekey, which PQXDH used).
func NewInitiatorRatchet(rand io.Reader, sk [KeySize]byte, responderKey []byte) (*Ratchet, error) {
	hka, nhkb, err := headerKeys(sk)
	if err != nil {
		return nil, err
	}
	r := &Ratchet{dhr: append([]byte(nil), responderKey...), rk: sk, hks: hka, nhkr: nhkb, rand: rand, clock: clock.Real{}}
	if r.dhs, err = generateDH(rand); err != nil {
		return nil, err
	}
	dh, err := r.dh()
	if err != nil {
		return nil, err
	}
	if r.rk, r.cks, r.nhks, err = kdfRK(r.rk, dh); err != nil {
		return nil, err
	}
	return r, nil
}

// NewResponderRatchet starts the responder's ratchet (§4.3
// RatchetInitBobHE) from SK and its ratchet key pair (its signed prekey).
func NewResponderRatchet(rand io.Reader, sk [KeySize]byte, key *ecdh.PrivateKey) (*Ratchet, error) {
	hka, nhkb, err := headerKeys(sk)
	if err != nil {
		return nil, err
	}
	return &Ratchet{dhs: key, rk: sk, nhks: nhkb, nhkr: hka, rand: rand, clock: clock.Real{}}, nil
}

// Encrypt encrypts plaintext with associated data ad (§4.3
// RatchetEncryptHE) and returns the encrypted header and the ciphertext.
func (r *Ratchet) Encrypt(plaintext, ad []byte) (encHeader, ciphertext []byte, err error) {
	if r.cks == nil {
		return nil, nil, errors.New("session: cannot send before the first message is received")
	}
	var mk [32]byte
	r.cks, mk = kdfCK(r.cks)
	defer clear(mk[:])
	header := make([]byte, 0, headerLen)
	header = append(header, r.dhs.PublicKey().Bytes()...)
	header = binary.BigEndian.AppendUint32(header, r.pn)
	header = binary.BigEndian.AppendUint32(header, r.ns)
	if encHeader, err = hencrypt(r.rand, r.hks, header); err != nil {
		return nil, nil, err
	}
	r.ns++
	ciphertext, err = encrypt(mk, plaintext, append(append([]byte(nil), ad...), encHeader...))
	return encHeader, ciphertext, err
}

// Decrypt decrypts a message (§4.3 RatchetDecryptHE). The state changes only
// if the message decrypts.
func (r *Ratchet) Decrypt(encHeader, ciphertext, ad []byte) ([]byte, error) {
	fullAD := append(append([]byte(nil), ad...), encHeader...)
	// Skipped keys share a few header keys: open the header once per key.
	opened := map[*byte][]byte{}
	for i, s := range r.skipped {
		header, tried := opened[&s.hk[0]]
		if !tried {
			header, _ = hdecrypt(s.hk, encHeader)
			opened[&s.hk[0]] = header
		}
		if header == nil || binary.BigEndian.Uint32(header[36:]) != s.n {
			continue
		}
		plaintext, err := decrypt(s.mk, ciphertext, fullAD)
		if err != nil {
			return nil, ErrDecrypt
		}
		clear(r.skipped[i].mk[:])
		r.skipped = append(r.skipped[:i], r.skipped[i+1:]...)
		return plaintext, nil
	}
	// Work on a copy, so that a message that fails leaves the state as it
	// was (§3.5: the state is not changed by a failed decryption).
	next := r.clone()
	plaintext, err := next.decryptNew(encHeader, ciphertext, fullAD)
	if err != nil {
		next.wipeChains()
		return nil, err
	}
	r.wipeChains()
	*r = *next
	return plaintext, nil
}

func (r *Ratchet) decryptNew(encHeader, ciphertext, ad []byte) ([]byte, error) {
	var header []byte
	ratchetStep := false
	if h, err := hdecrypt(r.hkr, encHeader); err == nil {
		header = h
	} else if h, err := hdecrypt(r.nhkr, encHeader); err == nil {
		header, ratchetStep = h, true
	} else {
		return nil, ErrDecrypt
	}
	dh := header[:32]
	pn := binary.BigEndian.Uint32(header[32:36])
	n := binary.BigEndian.Uint32(header[36:40])
	if ratchetStep {
		if err := r.skip(pn); err != nil {
			return nil, err
		}
		if err := r.dhRatchet(dh); err != nil {
			return nil, err
		}
	}
	if err := r.skip(n); err != nil {
		return nil, err
	}
	var mk [32]byte
	r.ckr, mk = kdfCK(r.ckr)
	defer clear(mk[:])
	r.nr++
	plaintext, err := decrypt(mk, ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

// skip stores the message keys of the current receiving chain up to until
// (§3.5 SkipMessageKeysHE).
func (r *Ratchet) skip(until uint32) error {
	if uint64(until) > uint64(r.nr)+MaxSkip {
		return fmt.Errorf("%w: %d keys", ErrTooManySkipped, until-r.nr)
	}
	if r.ckr == nil {
		return nil
	}
	for r.nr < until {
		var mk [32]byte
		r.ckr, mk = kdfCK(r.ckr)
		r.skipped = append(r.skipped, skippedKey{hk: r.hkr, n: r.nr, mk: mk, stored: r.clock.Now()})
		r.nr++
	}
	if over := len(r.skipped) - MaxStoredSkipped; over > 0 {
		for i := range over {
			clear(r.skipped[i].mk[:])
		}
		r.skipped = append([]skippedKey(nil), r.skipped[over:]...)
	}
	return nil
}

// SetClock replaces the clock that timestamps skipped keys (for tests).
func (r *Ratchet) SetClock(c clock.Clock) { r.clock = c }

// ExpireSkipped erases the skipped message keys stored longer than maxAge:
// a message that late is treated as lost (§3.2 suggests deleting skipped
// keys after an appropriate time).
func (r *Ratchet) ExpireSkipped(maxAge time.Duration) int {
	cutoff := r.clock.Now().Add(-maxAge)
	kept := r.skipped[:0]
	removed := 0
	for _, s := range r.skipped {
		if s.stored.Before(cutoff) {
			clear(s.mk[:])
			removed++
			continue
		}
		kept = append(kept, s)
	}
	for i := len(kept); i < len(r.skipped); i++ {
		r.skipped[i] = skippedKey{}
	}
	r.skipped = kept
	return removed
}

// dhRatchet is §3.5 DHRatchetHE.
func (r *Ratchet) dhRatchet(dhr []byte) error {
	r.pn, r.ns, r.nr = r.ns, 0, 0
	r.hks, r.hkr = r.nhks, r.nhkr
	r.dhr = append([]byte(nil), dhr...)
	dh, err := r.dh()
	if err != nil {
		return ErrDecrypt
	}
	if r.rk, r.ckr, r.nhkr, err = kdfRK(r.rk, dh); err != nil {
		return err
	}
	if r.dhs, err = generateDH(r.rand); err != nil {
		return err
	}
	if dh, err = r.dh(); err != nil {
		return err
	}
	r.rk, r.cks, r.nhks, err = kdfRK(r.rk, dh)
	return err
}

func (r *Ratchet) dh() ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(r.dhr)
	if err != nil {
		return nil, err
	}
	return r.dhs.ECDH(pub)
}

// clone copies the state for a decryption attempt; the chain keys are
// copied, since deriving the next chain key erases the previous one.
func (r *Ratchet) clone() *Ratchet {
	c := *r
	c.cks = append([]byte(nil), r.cks...)
	c.ckr = append([]byte(nil), r.ckr...)
	if r.cks == nil {
		c.cks = nil
	}
	if r.ckr == nil {
		c.ckr = nil
	}
	c.skipped = append([]skippedKey(nil), r.skipped...)
	return &c
}

// wipeChains erases the chain keys and root key of a state that is being
// discarded.
func (r *Ratchet) wipeChains() {
	clear(r.cks)
	clear(r.ckr)
	clear(r.rk[:])
}

func generateDH(rand io.Reader) (*ecdh.PrivateKey, error) {
	var seed [32]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("session: failed to read randomness: %w", err)
	}
	return ecdh.X25519().NewPrivateKey(seed[:])
}

// kdfRK is KDF_RK_HE: (RK, CK, NHK) from HKDF(salt = RK, ikm = DH output).
func kdfRK(rk [32]byte, dh []byte) (newRK [32]byte, ck, nhk []byte, err error) {
	out, err := hkdf.Key(sha256.New, dh, rk[:], rootInfo, 96)
	clear(dh)
	if err != nil {
		return newRK, nil, nil, err
	}
	copy(newRK[:], out[:32])
	ck = append([]byte(nil), out[32:64]...)
	nhk = append([]byte(nil), out[64:96]...)
	clear(out)
	return newRK, ck, nhk, nil
}

// kdfCK is KDF_CK: message key HMAC(CK, 0x01), next chain key HMAC(CK, 0x02).
func kdfCK(ck []byte) (next []byte, mk [32]byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{0x01})
	m.Sum(mk[:0])
	m = hmac.New(sha256.New, ck)
	m.Write([]byte{0x02})
	next = m.Sum(nil)
	clear(ck)
	return next, mk
}

// messageAEAD derives, from a message key, the ChaCha20-Poly1305 instance
// and nonce that encrypt that one message (HKDF-SHA-256, 44 bytes).
func messageAEAD(mk [32]byte) (cipher.AEAD, []byte, error) {
	out, err := hkdf.Key(sha256.New, mk[:], nil, messageInfo, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	if err != nil {
		return nil, nil, err
	}
	defer clear(out[:chacha20poly1305.KeySize])
	aead, err := chacha20poly1305.New(out[:chacha20poly1305.KeySize])
	if err != nil {
		return nil, nil, err
	}
	return aead, out[chacha20poly1305.KeySize:], nil
}

func encrypt(mk [32]byte, plaintext, ad []byte) ([]byte, error) {
	aead, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nonce, plaintext, ad), nil
}

func decrypt(mk [32]byte, ciphertext, ad []byte) ([]byte, error) {
	aead, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nonce, ciphertext, ad)
}

func hencrypt(rand io.Reader, hk, header []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(hk)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(header)+aead.Overhead())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("session: failed to read randomness: %w", err)
	}
	return aead.Seal(nonce, nonce, header, nil), nil
}

func hdecrypt(hk, enc []byte) ([]byte, error) {
	if hk == nil || len(enc) != chacha20poly1305.NonceSizeX+headerLen+chacha20poly1305.Overhead {
		return nil, ErrDecrypt
	}
	aead, err := chacha20poly1305.NewX(hk)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, enc[:chacha20poly1305.NonceSizeX], enc[chacha20poly1305.NonceSizeX:], nil)
}
