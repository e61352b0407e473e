// Package lioness implements the LIONESS wide-block cipher in the
// LIONESS-BLAKE2b-ChaCha20 parameterization of Yawning Angel's "The LIONESS
// Wide-Block-Cipher Specification" (katzenpost/docs specs/lioness.rst), which
// goes back to Anderson and Biham's LIONESS and is the payload cipher of the
// original Sphinx paper.
//
// LIONESS is a strong pseudorandom permutation over the whole block: change
// any bit of the ciphertext and the whole plaintext changes. Sphinx relies on
// that, with a block of zeros at the front, to detect a modified payload.
//
// Deviations from the specification text, following its reference
// implementation and test vectors (both checked in this package's tests):
//   - BLAKE2b is computed with digest length 32 set in its parameter block
//     (the reference code's choice), not as BLAKE2b-512 cut to 32 bytes.
//   - Encryption splits the plaintext, not the ciphertext (a typo in §3.1).
//   - The block is ciphered in place, so the reference code's bug with a
//     destination longer than the source cannot arise.
//
// It provides no authentication and no nonce management: each (key, iv) pair
// must be used for one block, which Sphinx guarantees by deriving both from a
// fresh shared secret per hop.
package lioness

import (
	"crypto/subtle"
	"fmt"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
)

const (
	// KeySize is the length of a key: k1 | k2 | k3 | k4, 32 bytes each.
	KeySize = 4 * hashSize
	// IVSize is the length of an IV: iv1 | iv2 | iv3 | iv4, 12 bytes each.
	IVSize = 4 * chacha20.NonceSize
	// MinBlockSize is the shortest block LIONESS can cipher: the left half L
	// is 32 bytes and the right half must not be empty.
	MinBlockSize = hashSize + 1
	// MaxBlockSize is the longest block: the right half may be at most 2^32
	// ChaCha20 blocks of 64 bytes, the limit of ChaCha20's 32-bit counter.
	MaxBlockSize = hashSize + (1<<32)*64

	hashSize = 32 // BLAKE2b digest length and ChaCha20 key length
)

// Encrypt enciphers block in place under key and iv:
//
//	R = ChaCha20(L ^ k1, iv1, R)
//	L = L ^ BLAKE2b(k2 | iv2, R)
//	R = ChaCha20(L ^ k3, iv3, R)
//	L = L ^ BLAKE2b(k4 | iv4, R)
func Encrypt(key *[KeySize]byte, iv *[IVSize]byte, block []byte) error {
	if err := checkLength(block); err != nil {
		return err
	}
	l, r := (*[hashSize]byte)(block[:hashSize]), block[hashSize:]
	streamXOR(l, subkey(key, 0), ivPart(iv, 0), r)
	hashXOR(l, subkey(key, 1), ivPart(iv, 1), r)
	streamXOR(l, subkey(key, 2), ivPart(iv, 2), r)
	hashXOR(l, subkey(key, 3), ivPart(iv, 3), r)
	return nil
}

// Decrypt deciphers block in place under key and iv, undoing [Encrypt].
func Decrypt(key *[KeySize]byte, iv *[IVSize]byte, block []byte) error {
	if err := checkLength(block); err != nil {
		return err
	}
	l, r := (*[hashSize]byte)(block[:hashSize]), block[hashSize:]
	hashXOR(l, subkey(key, 3), ivPart(iv, 3), r)
	streamXOR(l, subkey(key, 2), ivPart(iv, 2), r)
	hashXOR(l, subkey(key, 1), ivPart(iv, 1), r)
	streamXOR(l, subkey(key, 0), ivPart(iv, 0), r)
	return nil
}

func checkLength(block []byte) error {
	if len(block) < MinBlockSize || uint64(len(block)) > MaxBlockSize {
		return fmt.Errorf("lioness: block of %d bytes, want %d to %d", len(block), MinBlockSize, uint64(MaxBlockSize))
	}
	return nil
}

func subkey(key *[KeySize]byte, i int) *[hashSize]byte {
	return (*[hashSize]byte)(key[i*hashSize : (i+1)*hashSize])
}

func ivPart(iv *[IVSize]byte, i int) []byte {
	return iv[i*chacha20.NonceSize : (i+1)*chacha20.NonceSize]
}

// streamXOR computes r ^= ChaCha20(l ^ k, nonce), counter starting at 0.
func streamXOR(l, k *[hashSize]byte, nonce, r []byte) {
	var streamKey [hashSize]byte
	subtle.XORBytes(streamKey[:], l[:], k[:])
	c, err := chacha20.NewUnauthenticatedCipher(streamKey[:], nonce)
	clear(streamKey[:])
	if err != nil {
		panic("lioness: internal error: " + err.Error())
	}
	c.XORKeyStream(r, r)
}

// hashXOR computes l ^= BLAKE2b-256(key = k | nonce, r).
func hashXOR(l, k *[hashSize]byte, nonce, r []byte) {
	var macKey [hashSize + chacha20.NonceSize]byte
	copy(macKey[:], k[:])
	copy(macKey[hashSize:], nonce)
	h, err := blake2b.New(hashSize, macKey[:])
	clear(macKey[:])
	if err != nil {
		panic("lioness: internal error: " + err.Error())
	}
	h.Write(r)
	var sum [hashSize]byte
	h.Sum(sum[:0])
	subtle.XORBytes(l[:], l[:], sum[:])
}
