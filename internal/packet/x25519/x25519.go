// Package x25519 is the X25519 function of RFC 7748 written as a Montgomery
// ladder over filippo.io/edwards25519/field, for the Sphinx hot path.
//
// It exists for speed, not new functionality. In Go 1.26 crypto/ecdh computes
// a public key whenever a private key is built, and
// golang.org/x/crypto/curve25519.X25519 builds one on every call, so a
// scalar multiplication by a fresh scalar costs two ladders. Sphinx multiplies
// by a fresh blinding scalar at every hop; this package does that with one
// ladder and no allocations.
//
// It offers the clamped function of RFC 7748 section 5 ([ScalarMult]), the
// same ladder with the scalar taken as an unclamped 256-bit integer
// ([ScalarMultUnclamped], for scalars that are products computed modulo the
// group order, see package sphinx), and fixed-base multiplication through
// edwards25519's precomputed tables ([ScalarBaseMult], [ScalarBaseMultScalar]).
//
// Every function refuses an all-zero result (RFC 7748 section 6.1), which is
// what a low-order input point gives.
//
// It is not a general elliptic-curve library and not a key-management API:
// keys are plain 32-byte arrays that the caller owns and wipes.
package x25519

import (
	"crypto/subtle"
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Size is the length of scalars and of u-coordinates, in bytes.
const Size = 32

// ErrLowOrder is returned when a multiplication yields the all-zero
// u-coordinate: the input point had low order (or the scalar was zero mod the
// point's order), and the result must not be used as a shared secret.
var ErrLowOrder = errors.New("x25519: low-order point (all-zero result)")

// a24 is (A - 2) / 4 for Curve25519's A = 486662, as RFC 7748 section 5 uses it
// in z_2 = E * (AA + a24 * E).
const a24 = 121665

// ScalarMult sets dst to X25519(scalar, point) as RFC 7748 section 5 defines
// it: the scalar is clamped, the high bit of the point is masked.
func ScalarMult(dst, scalar, point *[Size]byte) error {
	var k [Size]byte
	copy(k[:], scalar[:])
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
	// Bit 255 of a clamped scalar is zero, so the ladder starts at bit 254.
	ladder(dst, &k, point, 254)
	clear(k[:])
	return checkNonZero(dst)
}

// ScalarMultUnclamped sets dst to the u-coordinate of k·P, where k is the
// scalar read as a little-endian 256-bit integer with no clamping, and P is
// the point whose u-coordinate is point (high bit masked). The ladder runs
// over all 256 bits, so its running time does not depend on k.
//
// Clamping forces a multiple of the cofactor 8; callers of this function are
// responsible for that themselves if they need it.
func ScalarMultUnclamped(dst, scalar, point *[Size]byte) error {
	ladder(dst, scalar, point, 255)
	return checkNonZero(dst)
}

// ScalarBaseMult sets dst to X25519(scalar, 9), the public key of scalar,
// using edwards25519's fixed-base tables, which are several times faster than
// a ladder.
func ScalarBaseMult(dst, scalar *[Size]byte) error {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(scalar[:])
	if err != nil {
		panic("x25519: internal error: " + err.Error())
	}
	return ScalarBaseMultScalar(dst, s)
}

// ScalarBaseMultScalar sets dst to the u-coordinate of s·B, where B is the
// base point (u = 9) and s a scalar modulo the group order.
func ScalarBaseMultScalar(dst *[Size]byte, s *edwards25519.Scalar) error {
	var p edwards25519.Point
	p.ScalarBaseMult(s)
	copy(dst[:], p.BytesMontgomery())
	return checkNonZero(dst)
}

func checkNonZero(u *[Size]byte) error {
	var zero [Size]byte
	if subtle.ConstantTimeCompare(u[:], zero[:]) == 1 {
		return ErrLowOrder
	}
	return nil
}

// ladder is the Montgomery ladder of RFC 7748 section 5, processing scalar
// bits topBit down to 0 in constant time.
//
// The step computes RFC 7748's values in an order that needs only two
// temporaries; with AA - BB = E, its z_2 = E * (AA + a24 * E) is written
// E * (BB + (a24 + 1) * E).
func ladder(dst, scalar, point *[Size]byte, topBit int) {
	var x1, x2, z2, x3, z3, t0, t1 field.Element

	// SetBytes masks bit 255 and accepts non-canonical values, as RFC 7748
	// requires for u-coordinates. It fails only on a length other than 32.
	if _, err := x1.SetBytes(point[:]); err != nil {
		panic("x25519: internal error: " + err.Error())
	}
	x2.One()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for t := uint(topBit) + 1; t > 0; t-- {
		bit := int(scalar[(t-1)>>3]>>((t-1)&7)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit

		t0.Subtract(&x3, &z3) // D
		t1.Subtract(&x2, &z2) // B
		x2.Add(&x2, &z2)      // A
		z2.Add(&x3, &z3)      // C
		z3.Multiply(&t0, &x2) // DA
		z2.Multiply(&z2, &t1) // CB
		t0.Square(&t1)        // BB
		t1.Square(&x2)        // AA
		x3.Add(&z3, &z2)      // DA + CB
		z2.Subtract(&z3, &z2) // DA - CB
		x2.Multiply(&t1, &t0) // x_2 = AA * BB
		t1.Subtract(&t1, &t0) // E = AA - BB
		z2.Square(&z2)        // (DA - CB)^2
		z3.Mult32(&t1, a24+1) // (a24 + 1) * E
		x3.Square(&x3)        // x_3 = (DA + CB)^2
		t0.Add(&t0, &z3)      // BB + (a24 + 1) * E = AA + a24 * E
		z3.Multiply(&x1, &z2) // z_3 = x_1 * (DA - CB)^2
		z2.Multiply(&t1, &t0) // z_2 = E * (AA + a24 * E)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst[:], x2.Bytes())
}
