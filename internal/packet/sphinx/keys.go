package sphinx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"

	"golang.org/x/crypto/chacha20"

	"github.com/backchannel/backchannel/internal/packet/lioness"
)

// kdfInfo is the HKDF info string of Katzenpost's Sphinx KDF (lowercase k, as
// in its code and vectors; its specification text capitalises it).
const kdfInfo = "katzenpost-kdf-v0-hkdf-sha256"

// Layout of the HKDF-Expand output for one hop. The first 160 bytes are
// Katzenpost's; backchannel expands further for the LIONESS key and IV (HKDF
// output is prefix-stable, so the first 160 bytes are unchanged).
const (
	headerMACKeyOffset  = 0   // [0:32]    HMAC-SHA256 key for gamma
	headerKeyOffset     = 32  // [32:64]   AES-256-CTR key for beta
	headerIVOffset      = 64  // [64:80]   AES-256-CTR initial counter block
	aezKeyOffset        = 80  // [80:128]  Katzenpost's AEZ key: unused
	blindingSeedOffset  = 128 // [128:160] ChaCha20 key for the blinding scalar
	lionessKeyOffset    = 160 // [160:288] LIONESS key
	lionessIVOffset     = 288 // [288:336] LIONESS IV
	katzenpostKDFLength = 160
	packetKeysLength    = lionessIVOffset + lioness.IVSize
	headerKeyLength     = 32
	headerIVLength      = aes.BlockSize
	blindingSeedLength  = 32
	headerMACKeyLength  = 32
)

// packetKeys is the key material one hop derives from its shared secret.
type packetKeys [packetKeysLength]byte

// deriveKeys expands a shared secret into a hop's keys: HKDF-SHA256 Expand
// only, with the secret used directly as the pseudorandom key (Katzenpost has
// no Extract step).
func deriveKeys(k *packetKeys, sharedSecret *[32]byte) {
	okm, err := hkdf.Expand(sha256.New, sharedSecret[:], kdfInfo, packetKeysLength)
	if err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	copy(k[:], okm)
	clear(okm)
}

func (k *packetKeys) headerMACKey() []byte {
	return k[headerMACKeyOffset : headerMACKeyOffset+headerMACKeyLength]
}

func (k *packetKeys) lionessKey() *[lioness.KeySize]byte {
	return (*[lioness.KeySize]byte)(k[lionessKeyOffset:lionessIVOffset])
}

func (k *packetKeys) lionessIV() *[lioness.IVSize]byte {
	return (*[lioness.IVSize]byte)(k[lionessIVOffset:packetKeysLength])
}

// payloadKeyMaterial is the hop's LIONESS key and IV, as a SURB decryption
// token stores them.
func (k *packetKeys) payloadKeyMaterial() []byte { return k[lionessKeyOffset:packetKeysLength] }

// headerKeystreamXOR XORs, in place, beta with the start of the header
// keystream, AES-256-CTR(header key, header IV) with the 16-byte IV as the
// initial counter block, and tail with the keystream that follows.
func (k *packetKeys) headerKeystreamXOR(beta, tail []byte) {
	block, err := aes.NewCipher(k[headerKeyOffset : headerKeyOffset+headerKeyLength])
	if err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	stream := cipher.NewCTR(block, k[headerIVOffset:headerIVOffset+headerIVLength])
	stream.XORKeyStream(beta, beta)
	stream.XORKeyStream(tail, tail)
}

// headerMAC computes HMAC-SHA256 over the concatenation of parts.
func (k *packetKeys) headerMAC(out *[MACLength]byte, parts ...[]byte) {
	m := hmac.New(sha256.New, k.headerMACKey())
	for _, p := range parts {
		m.Write(p)
	}
	m.Sum(out[:0])
}

// blindingFactor is the X25519 scalar that blinds alpha for the next hop: the
// first 32 bytes of ChaCha20 keystream under the blinding seed with an
// all-zero nonce (counter 0).
func (k *packetKeys) blindingFactor(out *[32]byte) {
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(k[blindingSeedOffset:blindingSeedOffset+blindingSeedLength], nonce[:])
	if err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	clear(out[:])
	c.XORKeyStream(out[:], out[:])
}
