// Package testrand gives tests deterministic randomness: an io.Reader of
// bytes from a seeded generator, so keys, packets and paths come out the
// same on every run. It is for tests only; nothing else imports it.
package testrand

import "math/rand/v2"

// Reader reads deterministic bytes from Rand.
type Reader struct{ Rand *rand.Rand }

// New returns a Reader seeded with seed (zero-padded to 32 bytes).
func New(seed ...byte) Reader {
	var s [32]byte
	copy(s[:], seed)
	return Reader{Rand: rand.New(rand.NewChaCha8(s))}
}

// Read fills p; it never fails.
func (r Reader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.Rand.Uint32())
	}
	return len(p), nil
}
