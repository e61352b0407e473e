// Package x25519 is the X25519 function of RFC 7748 for the Sphinx hot path:
// CIRCL's assembly ladder for clamped scalars, and a Montgomery ladder over
// CIRCL's assembly field arithmetic (github.com/cloudflare/circl/math/fp25519)
// for unclamped ones.
//
// It exists for speed, not new functionality. In Go 1.26 crypto/ecdh computes
// a public key whenever a private key is built, and
// golang.org/x/crypto/curve25519.X25519 builds one on every call, so a
// scalar multiplication by a fresh scalar costs two ladders; and Go's field
// arithmetic is portable code, where CIRCL's uses the BMI2 and ADX
// instructions of amd64 (with a portable fallback elsewhere). Sphinx
// multiplies by a fresh blinding scalar at every hop; this package does that
// with one ladder and no allocations.
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
	circl "github.com/cloudflare/circl/dh/x25519"
	fp "github.com/cloudflare/circl/math/fp25519"
)

// Size is the length of scalars and of u-coordinates, in bytes.
const Size = 32

// ErrLowOrder is returned when a multiplication yields the all-zero
// u-coordinate: the input point had low order (or the scalar was zero mod the
// point's order), and the result must not be used as a shared secret.
var ErrLowOrder = errors.New("x25519: low-order point (all-zero result)")

// a24plus1 is (A - 2) / 4 + 1 for Curve25519's A = 486662, as a field
// element: RFC 7748 section 5's z_2 = E * (AA + a24 * E) is computed as
// E * (BB + (a24 + 1) * E).
var a24plus1 = fp.Elt{0x42, 0xdb, 0x01} // 121666, little-endian

// ScalarMult sets dst to X25519(scalar, point) as RFC 7748 section 5 defines
// it: the scalar is clamped, the high bit of the point is masked. It is
// CIRCL's X25519 (its ladder and field in assembly); a low-order point,
// which CIRCL reports, is refused as an all-zero result is.
func ScalarMult(dst, scalar, point *[Size]byte) error {
	if !circl.Shared((*circl.Key)(dst), (*circl.Key)(scalar), (*circl.Key)(point)) {
		return ErrLowOrder
	}
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

// IsLowOrder reports, in constant time, whether X25519 of any clamped scalar
// and point gives the all-zero result: whether point (high bit masked,
// reduced modulo p) is one of the five u-coordinates of order 1, 2, 4 or 8 on
// Curve25519 or its twist. A clamped scalar is a multiple of the cofactor 8,
// so these and only these are sent to zero (the curve's group is Z/8 × Z/ℓ,
// the twist's Z/4 × Z/ℓ'). It lets a caller refuse such a point without a
// ladder, where the multiplication itself happens inside another library
// (X-Wing's decapsulation).
func IsLowOrder(point *[Size]byte) bool {
	var u fp.Elt
	copy(u[:], point[:])
	u[Size-1] &= 0x7f
	fp.Modp(&u)
	low := 0
	for i := range lowOrderPoints {
		low |= subtle.ConstantTimeCompare(u[:], lowOrderPoints[i][:])
	}
	return low == 1
}

// lowOrderPoints are the reduced u-coordinates that IsLowOrder refuses: 0
// (order 2), 1 (order 4), the two points of order 8, and p − 1 (order 4, on
// the twist). The non-canonical encodings p and p + 1 reduce to 0 and 1.
var lowOrderPoints = [5]fp.Elt{
	{},
	{1},
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
		0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

func checkNonZero(u *[Size]byte) error {
	var zero [Size]byte
	if subtle.ConstantTimeCompare(u[:], zero[:]) == 1 {
		return ErrLowOrder
	}
	return nil
}

// ladder is the Montgomery ladder of RFC 7748 section 5 over CIRCL's field
// arithmetic, processing scalar bits topBit down to 0 in constant time.
//
// The step computes RFC 7748's values in an order that needs only two
// temporaries; with AA - BB = E, its z_2 = E * (AA + a24 * E) is written
// E * (BB + (a24 + 1) * E). CIRCL's elements are 32-byte little-endian
// integers reduced lazily, so the u-coordinate is taken as it comes (bit
// 255 masked, a value at or above p accepted, as RFC 7748 requires).
func ladder(dst, scalar, point *[Size]byte, topBit int) {
	var x1, x2, z2, x3, z3, t0, t1 fp.Elt
	x1 = fp.Elt(*point)
	x1[31] &= 127
	fp.SetOne(&x2)
	x3 = x1
	fp.SetOne(&z3)

	swap := uint(0)
	for t := uint(topBit) + 1; t > 0; t-- {
		bit := uint(scalar[(t-1)>>3]>>((t-1)&7)) & 1
		swap ^= bit
		fp.Cswap(&x2, &x3, swap)
		fp.Cswap(&z2, &z3, swap)
		swap = bit

		fp.Sub(&t0, &x3, &z3)       // D
		fp.Sub(&t1, &x2, &z2)       // B
		fp.Add(&x2, &x2, &z2)       // A
		fp.Add(&z2, &x3, &z3)       // C
		fp.Mul(&z3, &t0, &x2)       // DA
		fp.Mul(&z2, &z2, &t1)       // CB
		fp.Sqr(&t0, &t1)            // BB
		fp.Sqr(&t1, &x2)            // AA
		fp.Add(&x3, &z3, &z2)       // DA + CB
		fp.Sub(&z2, &z3, &z2)       // DA - CB
		fp.Mul(&x2, &t1, &t0)       // x_2 = AA * BB
		fp.Sub(&t1, &t1, &t0)       // E = AA - BB
		fp.Sqr(&z2, &z2)            // (DA - CB)^2
		fp.Mul(&z3, &t1, &a24plus1) // (a24 + 1) * E
		fp.Sqr(&x3, &x3)            // x_3 = (DA + CB)^2
		fp.Add(&t0, &t0, &z3)       // BB + (a24 + 1) * E = AA + a24 * E
		fp.Mul(&z3, &x1, &z2)       // z_3 = x_1 * (DA - CB)^2
		fp.Mul(&z2, &t1, &t0)       // z_2 = E * (AA + a24 * E)
	}
	fp.Cswap(&x2, &x3, swap)
	fp.Cswap(&z2, &z3, swap)

	fp.Inv(&z2, &z2)
	fp.Mul(&x2, &x2, &z2)
	if err := fp.ToBytes(dst[:], &x2); err != nil {
		panic("x25519: internal error: " + err.Error()) // dst has the element's size
	}
}
