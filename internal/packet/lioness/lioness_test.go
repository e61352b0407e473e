package lioness

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"
)

type vectorFile struct {
	Algorithm string `json:"algorithm"`
	KeySize   int    `json:"key_size"`
	IVSize    int    `json:"iv_size"`
	Source    any    `json:"source"`
	License   string `json:"license"`
	Encoding  string `json:"encoding"`
	Vectors   []struct {
		Key        string `json:"key"`
		IV         string `json:"iv"`
		Plaintext  string `json:"plaintext"`
		Ciphertext string `json:"ciphertext"`
		BlockLen   int    `json:"block_len"`
	} `json:"vectors"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestVectors checks both known-answer vectors of the reference
// implementation (testdata/README.txt), encrypt and decrypt.
func TestVectors(t *testing.T) {
	f, err := os.Open("testdata/lioness_blake2b_chacha20.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var vf vectorFile
	if err := dec.Decode(&vf); err != nil {
		t.Fatal(err)
	}
	if vf.Algorithm != "LIONESS-BLAKE2b-ChaCha20" || vf.KeySize != KeySize || vf.IVSize != IVSize {
		t.Fatalf("unexpected vector file header: %s, key %d, iv %d", vf.Algorithm, vf.KeySize, vf.IVSize)
	}
	if len(vf.Vectors) != 2 {
		t.Fatalf("%d vectors, want 2", len(vf.Vectors))
	}
	for i, v := range vf.Vectors {
		key := (*[KeySize]byte)(unhex(t, v.Key))
		iv := (*[IVSize]byte)(unhex(t, v.IV))
		plain, cipher := unhex(t, v.Plaintext), unhex(t, v.Ciphertext)
		if len(plain) != v.BlockLen {
			t.Fatalf("vector %d: block_len %d but %d bytes", i, v.BlockLen, len(plain))
		}
		block := bytes.Clone(plain)
		if err := Encrypt(key, iv, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, cipher) {
			t.Errorf("vector %d: Encrypt = %x, want %x", i, block, cipher)
		}
		if err := Decrypt(key, iv, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, plain) {
			t.Errorf("vector %d: Decrypt = %x, want %x", i, block, plain)
		}
	}
}

// TestBlockLengths checks the length limits and a round trip at lengths
// around the boundaries.
func TestBlockLengths(t *testing.T) {
	var key [KeySize]byte
	var iv [IVSize]byte
	for _, n := range []int{0, 1, MinBlockSize - 1} {
		if err := Encrypt(&key, &iv, make([]byte, n)); err == nil {
			t.Errorf("Encrypt accepted a %d-byte block", n)
		}
		if err := Decrypt(&key, &iv, make([]byte, n)); err == nil {
			t.Errorf("Decrypt accepted a %d-byte block", n)
		}
	}
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	for _, n := range []int{MinBlockSize, MinBlockSize + 1, 64, 95, 96, 97, 2032, 4096 + 33} {
		fillRand(rng, key[:])
		fillRand(rng, iv[:])
		plain := make([]byte, n)
		fillRand(rng, plain)
		block := bytes.Clone(plain)
		if err := Encrypt(&key, &iv, block); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(block, plain) {
			t.Fatalf("%d bytes: Encrypt changed nothing", n)
		}
		if err := Decrypt(&key, &iv, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, plain) {
			t.Fatalf("%d bytes: round trip failed", n)
		}
	}
}

// TestWideBlock checks the property Sphinx relies on: flipping any one bit of
// a ciphertext changes, after decryption, about half of the bits of both
// halves, and in particular the leading 32 bytes.
func TestWideBlock(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{4}))
	var key [KeySize]byte
	var iv [IVSize]byte
	fillRand(rng, key[:])
	fillRand(rng, iv[:])
	plain := make([]byte, 135)
	cipher := bytes.Clone(plain)
	if err := Encrypt(&key, &iv, cipher); err != nil {
		t.Fatal(err)
	}
	for bit := 0; bit < 8*len(cipher); bit++ {
		block := bytes.Clone(cipher)
		block[bit/8] ^= 1 << (bit % 8)
		if err := Decrypt(&key, &iv, block); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(block[:hashSize], plain[:hashSize]) {
			t.Fatalf("flipping bit %d left the first %d bytes unchanged", bit, hashSize)
		}
		if changed := bitsChanged(block, plain); changed < len(block)*8/4 {
			t.Fatalf("flipping bit %d changed only %d of %d bits", bit, changed, 8*len(block))
		}
	}
}

func bitsChanged(a, b []byte) int {
	n := 0
	for i := range a {
		for x := a[i] ^ b[i]; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

func fillRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func BenchmarkDecrypt2032(b *testing.B) {
	var key [KeySize]byte
	var iv [IVSize]byte
	block := make([]byte, 2032)
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Decrypt(&key, &iv, block); err != nil {
			b.Fatal(err)
		}
	}
}
