package sphinx

import (
	"github.com/cloudflare/circl/kem/xwing"

	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// EncapsulationSeedLength is what packet creation reads for each hop of a KEM
// scheme: X-Wing's derandomised encapsulation takes 32 bytes as the
// ML-KEM-768 message m and 32 as the X25519 ephemeral secret.
const EncapsulationSeedLength = xwing.EncapsulationSeedSize

// xwingMLKEMCiphertextLength is where an X-Wing ciphertext's X25519 part
// (the ephemeral public key) starts.
const xwingMLKEMCiphertextLength = xwing.CiphertextSize - x25519.Size

// decapsulate writes the X-Wing shared secret of ciphertext under key. It
// refuses a ciphertext whose X25519 part has low order, which X-Wing itself
// accepts (the X25519 secret would then be all zeros and the ML-KEM part
// alone would protect the hop): the check is a comparison with the five
// low-order points, not a second ladder.
func decapsulate(secret *[32]byte, key *PrivateKey, ciphertext []byte) error {
	if x25519.IsLowOrder((*[x25519.Size]byte)(ciphertext[xwingMLKEMCiphertextLength:])) {
		return ErrLowOrderPoint
	}
	key.xwing.DecapsulateTo(secret[:], ciphertext)
	return nil
}

// encapsulate writes the ciphertext and shared secret of one X-Wing
// encapsulation to key, derandomised by seed. ParsePublicKey has refused
// keys of low order, so the X25519 secret is never all zeros.
func encapsulate(ciphertext []byte, secret *[32]byte, key *PublicKey, seed *[EncapsulationSeedLength]byte) {
	key.xwing.EncapsulateTo(ciphertext, secret[:], seed[:])
}
