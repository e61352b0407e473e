// Package smp is the Socialist Millionaires' Protocol: two parties learn
// whether their secrets are equal and nothing else. backchannel uses it for
// the mutual interest check: each party's secret is HashToScalar("yes" ‖ C)
// if willing and a fresh random scalar if not, so the secrets match only if
// both are willing (see shared/specs/mutual-interest.md).
//
// It follows OTR's message flow and zero-knowledge proofs (OTRv3 §"The SMP
// protocol", in OTRv4's additive notation) over ristretto255, a prime-order
// group with canonical encodings, so the only element checks needed are
// canonical decoding and "not the identity". Every hash is domain-separated
// by a label, the message's proof index 1..8 and the check's context C.
//
// The protocol is not fair: the responder learns the result from message 3
// and could withhold message 4. Callers treat a missing message 4 as "no".
// It runs inside an authenticated session; it does not authenticate.
package smp

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"github.com/gtank/ristretto255"
)

// hashLabel domain-separates the protocol's hashes.
const hashLabel = "backchannel/smp/v1"

// Errors.
var (
	// ErrProof: a zero-knowledge proof in a message does not verify: the
	// peer cheated or the message was damaged. The check is over.
	ErrProof = errors.New("smp: proof does not verify")
	// ErrMalformed: a message cannot be decoded.
	ErrMalformed = errors.New("smp: malformed message")
	// ErrState: a message arrived out of turn.
	ErrState = errors.New("smp: message out of turn")
)

// Secret computes a party's input: HashToScalar(answer ‖ context). The mutual
// interest check passes "yes" when willing; when not, it uses RandomSecret.
func Secret(answer string, context []byte) *ristretto255.Scalar {
	return hashToScalar(0, []byte(answer), context)
}

// RandomSecret is a fresh uniformly random scalar: the input of a party who
// is not willing (never a fixed "no", which would make two refusals match).
func RandomSecret(rand io.Reader) (*ristretto255.Scalar, error) {
	return randomScalar(rand)
}

// hashToScalar is SHA-512 of label ‖ index ‖ each part (length-prefixed),
// reduced to a scalar.
func hashToScalar(index byte, parts ...[]byte) *ristretto255.Scalar {
	h := sha512.New()
	h.Write([]byte(hashLabel))
	h.Write([]byte{index})
	for _, p := range parts {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		h.Write(n[:])
		h.Write(p)
	}
	return ristretto255.NewScalar().FromUniformBytes(h.Sum(nil))
}

func randomScalar(rand io.Reader) (*ristretto255.Scalar, error) {
	var b [64]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("smp: failed to read randomness: %w", err)
	}
	s := ristretto255.NewScalar().FromUniformBytes(b[:])
	clear(b[:])
	return s, nil
}

func enc(e *ristretto255.Element) []byte { return e.Encode(nil) }

func base(s *ristretto255.Scalar) *ristretto255.Element {
	return ristretto255.NewElement().ScalarBaseMult(s)
}

func mul(s *ristretto255.Scalar, e *ristretto255.Element) *ristretto255.Element {
	return ristretto255.NewElement().ScalarMult(s, e)
}

func add(a, b *ristretto255.Element) *ristretto255.Element {
	return ristretto255.NewElement().Add(a, b)
}

func sub(a, b *ristretto255.Element) *ristretto255.Element {
	return ristretto255.NewElement().Subtract(a, b)
}

// d = r − x·c
func response(r, x, c *ristretto255.Scalar) *ristretto255.Scalar {
	return ristretto255.NewScalar().Subtract(r, ristretto255.NewScalar().Multiply(x, c))
}

// proveLog proves knowledge of x with X = x·G: c = H(i, r·G), d = r − x·c.
func proveLog(rand io.Reader, index byte, ctx []byte, x *ristretto255.Scalar) (c, d *ristretto255.Scalar, err error) {
	r, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	c = hashToScalar(index, ctx, enc(base(r)))
	return c, response(r, x, c), nil
}

// verifyLog checks c == H(i, d·G + c·X).
func verifyLog(index byte, ctx []byte, X *ristretto255.Element, c, d *ristretto255.Scalar) bool {
	return hashToScalar(index, ctx, enc(add(base(d), mul(c, X)))).Equal(c) == 1
}

// provePQ proves P = r·G3 and Q = r·G + x·G2 are well formed:
// cp = H(i, r5·G3, r5·G + r6·G2), d5 = r5 − r·cp, d6 = r6 − x·cp.
func provePQ(rand io.Reader, index byte, ctx []byte, g2, g3 *ristretto255.Element, r, x *ristretto255.Scalar) (cp, d5, d6 *ristretto255.Scalar, err error) {
	r5, err := randomScalar(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	r6, err := randomScalar(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	cp = hashToScalar(index, ctx, enc(mul(r5, g3)), enc(add(base(r5), mul(r6, g2))))
	return cp, response(r5, r, cp), response(r6, x, cp), nil
}

// verifyPQ checks cp == H(i, d5·G3 + cp·P, d5·G + d6·G2 + cp·Q).
func verifyPQ(index byte, ctx []byte, g2, g3, p, q *ristretto255.Element, cp, d5, d6 *ristretto255.Scalar) bool {
	l := add(mul(d5, g3), mul(cp, p))
	r := add(add(base(d5), mul(d6, g2)), mul(cp, q))
	return hashToScalar(index, ctx, enc(l), enc(r)).Equal(cp) == 1
}

// proveR proves R = x·(Qa − Qb) for the x with X = x·G:
// cr = H(i, r·G, r·(Qa − Qb)), d = r − x·cr.
func proveR(rand io.Reader, index byte, ctx []byte, qdiff *ristretto255.Element, x *ristretto255.Scalar) (cr, d *ristretto255.Scalar, err error) {
	r, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	cr = hashToScalar(index, ctx, enc(base(r)), enc(mul(r, qdiff)))
	return cr, response(r, x, cr), nil
}

// verifyR checks cr == H(i, d·G + cr·X, d·(Qa − Qb) + cr·R).
func verifyR(index byte, ctx []byte, X, qdiff, R *ristretto255.Element, cr, d *ristretto255.Scalar) bool {
	return hashToScalar(index, ctx, enc(add(base(d), mul(cr, X))), enc(add(mul(d, qdiff), mul(cr, R)))).Equal(cr) == 1
}
