package smp

import (
	"io"

	"github.com/gtank/ristretto255"
)

// Message1 is the initiator's first message.
type Message1 struct {
	G2a, G3a       *ristretto255.Element
	C2, D2, C3, D3 *ristretto255.Scalar
}

// Message2 is the responder's answer.
type Message2 struct {
	G2b, G3b       *ristretto255.Element
	C2, D2, C3, D3 *ristretto255.Scalar
	Pb, Qb         *ristretto255.Element
	Cp, D5, D6     *ristretto255.Scalar
}

// Message3 is the initiator's second message.
type Message3 struct {
	Pa, Qa     *ristretto255.Element
	Cp, D5, D6 *ristretto255.Scalar
	Ra         *ristretto255.Element
	Cr, D7     *ristretto255.Scalar
}

// Message4 is the responder's last message.
type Message4 struct {
	Rb     *ristretto255.Element
	Cr, D7 *ristretto255.Scalar
}

// Initiator is the party that starts a check.
type Initiator struct {
	rand           io.Reader
	ctx            []byte
	secret, a2, a3 *ristretto255.Scalar
	g2, g3, g3b    *ristretto255.Element
	pa, pb, qdiff  *ristretto255.Element
	step           int
}

// Responder is the party that answers a check.
type Responder struct {
	rand        io.Reader
	ctx         []byte
	secret, b3  *ristretto255.Scalar
	g2, g3, g3a *ristretto255.Element
	pb, qb      *ristretto255.Element
	step        int
}

// Start begins a check with the initiator's secret, in the check's context
// (which both parties must compute alike), and returns message 1.
func Start(rand io.Reader, secret *ristretto255.Scalar, context []byte) (*Initiator, *Message1, error) {
	in := &Initiator{rand: rand, ctx: append([]byte(nil), context...), secret: secret}
	var err error
	if in.a2, err = randomScalar(rand); err != nil {
		return nil, nil, err
	}
	if in.a3, err = randomScalar(rand); err != nil {
		return nil, nil, err
	}
	m := &Message1{G2a: base(in.a2), G3a: base(in.a3)}
	if m.C2, m.D2, err = proveLog(rand, 1, in.ctx, in.a2); err != nil {
		return nil, nil, err
	}
	if m.C3, m.D3, err = proveLog(rand, 2, in.ctx, in.a3); err != nil {
		return nil, nil, err
	}
	in.step = 1
	return in, m, nil
}

// Respond checks message 1 and answers with message 2.
func Respond(rand io.Reader, secret *ristretto255.Scalar, context []byte, m *Message1) (*Responder, *Message2, error) {
	ctx := append([]byte(nil), context...)
	if !valid(m) {
		return nil, nil, ErrMalformed
	}
	if !verifyLog(1, ctx, m.G2a, m.C2, m.D2) || !verifyLog(2, ctx, m.G3a, m.C3, m.D3) {
		return nil, nil, ErrProof
	}
	re := &Responder{rand: rand, ctx: ctx, secret: secret, g3a: m.G3a}
	b2, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	if re.b3, err = randomScalar(rand); err != nil {
		return nil, nil, err
	}
	r4, err := randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	re.g2, re.g3 = mul(b2, m.G2a), mul(re.b3, m.G3a)
	re.pb = mul(r4, re.g3)
	re.qb = add(base(r4), mul(secret, re.g2))
	out := &Message2{G2b: base(b2), G3b: base(re.b3), Pb: re.pb, Qb: re.qb}
	if out.C2, out.D2, err = proveLog(rand, 3, ctx, b2); err != nil {
		return nil, nil, err
	}
	if out.C3, out.D3, err = proveLog(rand, 4, ctx, re.b3); err != nil {
		return nil, nil, err
	}
	if out.Cp, out.D5, out.D6, err = provePQ(rand, 5, ctx, re.g2, re.g3, r4, secret); err != nil {
		return nil, nil, err
	}
	re.step = 2
	return re, out, nil
}

// Step checks message 2 and answers with message 3.
func (in *Initiator) Step(m *Message2) (*Message3, error) {
	if in.step != 1 {
		return nil, ErrState
	}
	in.step = -1 // any failure ends the check
	if !valid(m) {
		return nil, ErrMalformed
	}
	if !verifyLog(3, in.ctx, m.G2b, m.C2, m.D2) || !verifyLog(4, in.ctx, m.G3b, m.C3, m.D3) {
		return nil, ErrProof
	}
	in.g2, in.g3, in.g3b = mul(in.a2, m.G2b), mul(in.a3, m.G3b), m.G3b
	if !verifyPQ(5, in.ctx, in.g2, in.g3, m.Pb, m.Qb, m.Cp, m.D5, m.D6) {
		return nil, ErrProof
	}
	r4, err := randomScalar(in.rand)
	if err != nil {
		return nil, err
	}
	in.pa, in.pb = mul(r4, in.g3), m.Pb
	qa := add(base(r4), mul(in.secret, in.g2))
	in.qdiff = sub(qa, m.Qb)
	out := &Message3{Pa: in.pa, Qa: qa, Ra: mul(in.a3, in.qdiff)}
	if out.Cp, out.D5, out.D6, err = provePQ(in.rand, 6, in.ctx, in.g2, in.g3, r4, in.secret); err != nil {
		return nil, err
	}
	if out.Cr, out.D7, err = proveR(in.rand, 7, in.ctx, in.qdiff, in.a3); err != nil {
		return nil, err
	}
	in.step = 3
	return out, nil
}

// Step checks message 3 and returns message 4 and the result: whether the
// secrets are equal.
func (re *Responder) Step(m *Message3) (*Message4, bool, error) {
	if re.step != 2 {
		return nil, false, ErrState
	}
	re.step = -1
	if !valid(m) {
		return nil, false, ErrMalformed
	}
	if !verifyPQ(6, re.ctx, re.g2, re.g3, m.Pa, m.Qa, m.Cp, m.D5, m.D6) {
		return nil, false, ErrProof
	}
	qdiff := sub(m.Qa, re.qb)
	if !verifyR(7, re.ctx, re.g3a, qdiff, m.Ra, m.Cr, m.D7) {
		return nil, false, ErrProof
	}
	out := &Message4{Rb: mul(re.b3, qdiff)}
	var err error
	if out.Cr, out.D7, err = proveR(re.rand, 8, re.ctx, qdiff, re.b3); err != nil {
		return nil, false, err
	}
	rab := mul(re.b3, m.Ra)
	equal := rab.Equal(sub(m.Pa, re.pb)) == 1
	re.step = 4
	return out, equal, nil
}

// Finish checks message 4 and returns the result.
func (in *Initiator) Finish(m *Message4) (bool, error) {
	if in.step != 3 {
		return false, ErrState
	}
	in.step = -1
	if !valid(m) {
		return false, ErrMalformed
	}
	if !verifyR(8, in.ctx, in.g3b, in.qdiff, m.Rb, m.Cr, m.D7) {
		return false, ErrProof
	}
	rab := mul(in.a3, m.Rb)
	in.step = 4
	return rab.Equal(sub(in.pa, in.pb)) == 1, nil
}
