package smp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gtank/ristretto255"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var context = []byte("backchannel/mutual-interest/v1 test context")

// run plays a whole check, through the wire encoding, and returns what each
// side learned.
func run(t *testing.T, x, y *ristretto255.Scalar) (initiator, responder bool) {
	t.Helper()
	in, m1, err := Start(testrand.New(1), x, context)
	if err != nil {
		t.Fatal(err)
	}
	var w1 Message1
	roundTrip(t, m1, &w1)
	re, m2, err := Respond(testrand.New(2), y, context, &w1)
	if err != nil {
		t.Fatal(err)
	}
	var w2 Message2
	roundTrip(t, m2, &w2)
	m3, err := in.Step(&w2)
	if err != nil {
		t.Fatal(err)
	}
	var w3 Message3
	roundTrip(t, m3, &w3)
	m4, responder, err := re.Step(&w3)
	if err != nil {
		t.Fatal(err)
	}
	var w4 Message4
	roundTrip(t, m4, &w4)
	initiator, err = in.Finish(&w4)
	if err != nil {
		t.Fatal(err)
	}
	return initiator, responder
}

func roundTrip(t *testing.T, m interface{ MarshalBinary() ([]byte, error) }, out interface {
	UnmarshalBinary([]byte) error
	MarshalBinary() ([]byte, error)
}) {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	again, _ := out.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatal("message re-encodes differently")
	}
}

// TestMutualInterest plays the four cases of the interest check: only
// yes/yes matches, and both sides learn the same result.
func TestMutualInterest(t *testing.T) {
	yes := func() *ristretto255.Scalar { return Secret("yes", context) }
	no := func(seed byte) *ristretto255.Scalar {
		s, err := RandomSecret(testrand.New(seed))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		x, y *ristretto255.Scalar
		want bool
	}{
		{"yes/yes", yes(), yes(), true},
		{"yes/no", yes(), no(10), false},
		{"no/yes", no(11), yes(), false},
		{"no/no", no(12), no(13), false},
	} {
		a, b := run(t, tc.x, tc.y)
		if a != tc.want || b != tc.want {
			t.Errorf("%s: initiator %v, responder %v, want %v", tc.name, a, b, tc.want)
		}
	}
	// A "yes" in another check's context does not match.
	a, b := run(t, Secret("yes", []byte("another check")), yes())
	if a || b {
		t.Error("secrets from different contexts matched")
	}
}

// TestTamperedProofs changes each scalar and element of each message in
// turn: the receiver refuses every one with ErrProof (or ErrMalformed for an
// element that decodes to nothing valid).
func TestTamperedProofs(t *testing.T) {
	x, y := Secret("yes", context), Secret("yes", context)
	one := ristretto255.NewScalar().FromUniformBytes(bytes.Repeat([]byte{1}, 64))
	bump := func(s **ristretto255.Scalar) { *s = ristretto255.NewScalar().Add(*s, one) }
	shift := func(e **ristretto255.Element) {
		*e = ristretto255.NewElement().Add(*e, ristretto255.NewElement().Base())
	}

	for stage := 1; stage <= 4; stage++ {
		for field := 0; ; field++ {
			in, m1, _ := Start(testrand.New(3), x, context)
			var err error
			var msg message
			switch stage {
			case 1:
				msg = m1
			}
			re, m2, rerr := Respond(testrand.New(4), y, context, m1)
			if stage == 2 {
				msg = m2
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			var m3 *Message3
			var m4 *Message4
			if stage >= 3 {
				if m3, err = in.Step(m2); err != nil {
					t.Fatal(err)
				}
				if stage == 3 {
					msg = m3
				}
			}
			if stage == 4 {
				if m4, _, err = re.Step(m3); err != nil {
					t.Fatal(err)
				}
				msg = m4
			}
			es, ss := msg.elements(), msg.scalars()
			if field >= len(es)+len(ss) {
				break
			}
			if field < len(es) {
				shift(es[field])
			} else {
				bump(ss[field-len(es)])
			}
			switch stage {
			case 1:
				_, _, err = Respond(testrand.New(4), y, context, m1)
			case 2:
				_, err = in.Step(m2)
			case 3:
				_, _, err = re.Step(m3)
			case 4:
				_, err = in.Finish(m4)
			}
			if !errors.Is(err, ErrProof) {
				t.Fatalf("message %d field %d changed: %v, want ErrProof", stage, field, err)
			}
		}
	}
}

// TestRefusals checks identity elements, out-of-turn messages and malformed
// encodings.
func TestRefusals(t *testing.T) {
	x := Secret("yes", context)
	in, m1, err := Start(testrand.New(5), x, context)
	if err != nil {
		t.Fatal(err)
	}
	bad := *m1
	bad.G2a = ristretto255.NewElement().Zero()
	if _, _, err := Respond(testrand.New(6), x, context, &bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("identity element: %v", err)
	}
	b, _ := bad.MarshalBinary()
	var decoded Message1
	if err := decoded.UnmarshalBinary(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("encoded identity element: %v", err)
	}
	if _, err := in.Finish(&Message4{}); !errors.Is(err, ErrState) {
		t.Fatalf("message 4 before message 2: %v", err)
	}
	good, _ := m1.MarshalBinary()
	for name, bytes := range map[string][]byte{
		"short":   good[:50],
		"version": append([]byte{2}, good[1:]...),
		"number":  append([]byte{1, 2}, good[2:]...),
	} {
		var m Message1
		if err := m.UnmarshalBinary(bytes); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzMessages decodes arbitrary bytes as each message (the first byte
// chooses which): only ErrMalformed, and what decodes re-encodes the same.
func FuzzMessages(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzMessages")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		var m interface {
			UnmarshalBinary([]byte) error
			MarshalBinary() ([]byte, error)
		}
		switch b[0] % 4 {
		case 0:
			m = &Message1{}
		case 1:
			m = &Message2{}
		case 2:
			m = &Message3{}
		default:
			m = &Message4{}
		}
		if err := m.UnmarshalBinary(b[1:]); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b[1:]) {
			t.Fatal("re-encoding differs")
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	x := Secret("yes", context)
	for b.Loop() {
		in, m1, _ := Start(testrand.New(1), x, context)
		re, m2, _ := Respond(testrand.New(2), x, context, m1)
		m3, _ := in.Step(m2)
		m4, _, _ := re.Step(m3)
		if ok, err := in.Finish(m4); err != nil || !ok {
			b.Fatal("check failed")
		}
	}
}

// TestContext checks that both sides compute the same context whichever
// asks, and that every input changes it.
func TestContext(t *testing.T) {
	sid, a, b, check := []byte("session"), []byte("fingerprint A"), []byte("fingerprint B"), []byte("check 1")
	c := Context(sid, a, b, check, "ready to talk about a ceasefire?")
	if !bytes.Equal(c, Context(sid, b, a, check, "ready to talk about a ceasefire?")) {
		t.Fatal("the two sides compute different contexts")
	}
	for name, other := range map[string][]byte{
		"session":  Context([]byte("other"), a, b, check, "ready to talk about a ceasefire?"),
		"identity": Context(sid, a, []byte("mallory"), check, "ready to talk about a ceasefire?"),
		"check":    Context(sid, a, b, []byte("check 2"), "ready to talk about a ceasefire?"),
		"question": Context(sid, a, b, check, "ready to talk?"),
	} {
		if bytes.Equal(other, c) {
			t.Errorf("changing the %s left the context unchanged", name)
		}
	}
	// Two willing parties in the same check match; a "yes" to another
	// question does not.
	x, y := Secret("yes", c), Secret("yes", Context(sid, b, a, check, "ready to talk about a ceasefire?"))
	if x.Equal(y) != 1 {
		t.Fatal("two yeses in one check differ")
	}
}

// responderView is what the responder sees of one check and can compute
// from it: the initiator's messages, its own state, and the value
// Rab − (Pa − Pb), which is the identity exactly when the secrets match.
func responderView(t *testing.T, seed byte, x, y *ristretto255.Scalar) (match bool, blinded []byte) {
	t.Helper()
	in, m1, err := Start(testrand.New(seed, 1), x, context)
	if err != nil {
		t.Fatal(err)
	}
	re, m2, err := Respond(testrand.New(seed, 2), y, context, m1)
	if err != nil {
		t.Fatal(err)
	}
	m3, err := in.Step(m2)
	if err != nil {
		t.Fatal(err)
	}
	_, match, err = re.Step(m3)
	if err != nil {
		t.Fatal(err)
	}
	d := sub(mul(re.b3, m3.Ra), sub(m3.Pa, re.pb))
	return match, d.Encode(nil)
}

// TestNoPartyTranscriptIsSimulatable shows what a party who answered "no"
// (a random secret) learns: nothing about the other's answer. The
// simulator knows only the no-party's own secret and the context; it plays
// the other side with a fresh random secret of its own. The no-party's view
// in the real world, where the other side said yes, and in the simulated
// one are distributed alike:
//
//   - every message passes every proof check in both, and the result is
//     "no match" in both (the simulator needs no knowledge of the other's
//     answer to produce a view the no-party accepts);
//   - the one value in the view that depends on the secrets, Rab − (Pa −
//     Pb) = (x − y)·a3·b3·G, is a uniformly random non-identity element in
//     both, since y is uniform and unknown to the other side: a chi-squared
//     test on its top three bits, over 240 checks in each world, does not
//     tell the worlds apart (messages 1–3 otherwise consist of fresh random
//     multiples of G and Schnorr proofs, simulatable in the random-oracle
//     model as in any Schnorr protocol).
//
// As a control the same test is run for a party who said yes: there the
// real world (both yes) always shows the identity and the simulated one
// never does — the inherent leak that a yes-party learns the other's
// answer, which the test must be able to see.
func TestNoPartyTranscriptIsSimulatable(t *testing.T) {
	const checks = 240
	yes := Secret("yes", context)
	histogram := func(world func(i int) (bool, []byte)) (hist [8]int, matches int) {
		for i := range checks {
			match, d := world(i)
			if match {
				matches++
			}
			hist[d[0]>>5]++
		}
		return hist, matches
	}
	random := func(seed ...byte) *ristretto255.Scalar {
		s, err := RandomSecret(testrand.New(seed...))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The no-party is the responder, with a fresh random secret per check.
	real, realMatches := histogram(func(i int) (bool, []byte) {
		return responderView(t, byte(i), yes, random(byte(i), byte(i>>8), 'n'))
	})
	simulated, simMatches := histogram(func(i int) (bool, []byte) {
		return responderView(t, byte(i), random(byte(i), byte(i>>8), 's'), random(byte(i), byte(i>>8), 'n'))
	})
	if realMatches != 0 || simMatches != 0 {
		t.Fatalf("a no-party matched: %d real, %d simulated", realMatches, simMatches)
	}
	// Chi-squared test of homogeneity on 8 bins (7 degrees of freedom):
	// 18.48 is the 0.01 critical value.
	chi2 := 0.0
	for b := range real {
		total := float64(real[b] + simulated[b])
		if total == 0 {
			continue
		}
		for _, o := range []int{real[b], simulated[b]} {
			e := total / 2
			chi2 += (float64(o) - e) * (float64(o) - e) / e
		}
	}
	t.Logf("no-party view, real vs simulated: chi-squared %.2f (critical 18.48 at 0.01)", chi2)
	if chi2 > 18.48 {
		t.Errorf("the no-party's view is told apart from the simulation: chi-squared %.2f", chi2)
	}
	// Control: a yes-party's view does depend on the other's answer.
	yesReal, _ := responderView(t, 1, yes, yes)
	yesSim, _ := responderView(t, 1, random(1, 's'), yes)
	if !yesReal || yesSim {
		t.Fatalf("a yes-party's view should show the other's answer: real %v, simulated %v", yesReal, yesSim)
	}
}
