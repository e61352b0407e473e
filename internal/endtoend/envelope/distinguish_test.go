package envelope

import (
	"math"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// ML-KEM-768 ciphertext layout (FIPS 203): u, three polynomials of 256
// coefficients compressed to 10 bits, then v, one compressed to 4 bits.
const (
	mlkemQ     = 3329
	uBits      = 10
	vBits      = 4
	uCoeffs    = 3 * 256
	vCoeffs    = 256
	uByteCount = uCoeffs * uBits / 8
)

// compressCounts gives, for each d-bit value, how many integers modulo q
// compress to it (FIPS 203, Compress_d: round(2^d/q · x) mod 2^d).
func compressCounts(d int) []int {
	counts := make([]int, 1<<d)
	for x := range mlkemQ {
		c := (x<<d + mlkemQ/2) / mlkemQ % (1 << d)
		counts[c]++
	}
	return counts
}

// coefficients reads n d-bit little-endian packed values (ByteEncode_d).
func coefficients(b []byte, d, n int) []int {
	out := make([]int, n)
	for i := range out {
		v := 0
		for j := range d {
			bit := i*d + j
			v |= int(b[bit/8]>>(bit%8)&1) << j
		}
		out[i] = v
	}
	return out
}

// llr is the log-likelihood ratio, "an ML-KEM ciphertext" against "random
// bytes", of the bytes where a sealed payload has its ML-KEM ciphertext:
// the best test there is for one payload, since ML-KEM's u and v are
// (computationally) uniform modulo q before compression.
func llr(payload []byte, uCounts, vCounts []int) float64 {
	ct := payload[1 : 1+sealedEncLength]
	sum := 0.0
	for _, c := range coefficients(ct, uBits, uCoeffs) {
		sum += math.Log(float64(uCounts[c]) * (1 << uBits) / mlkemQ)
	}
	for _, c := range coefficients(ct[uByteCount:], vBits, vCoeffs) {
		sum += math.Log(float64(vCounts[c]) * (1 << vBits) / mlkemQ)
	}
	return sum
}

// TestSealedFormDistinguisher measures how well the recipient's provider
// can tell a sealed payload (a session's first message, or a loop sealed
// so) from a keyed one, from one payload, with the likelihood-ratio test on
// the compressed ML-KEM coefficients: the figure docs/client.md gives. It
// checks that the test has teeth (it does tell them apart) and that keyed
// payloads cannot be told from random bytes by it.
func TestSealedFormDistinguisher(t *testing.T) {
	bob := newRecipient(t, "bob")
	forms := bob.forms()
	sealed, keyed := forms[0].seal, forms[2].seal
	uCounts, vCounts := compressCounts(uBits), compressCounts(vBits)
	const n = 400
	rng := testrand.New(10)
	var sealedRight, keyedRight, randomRight int
	for range n {
		s, err := sealed(t, sessionContents())
		if err != nil {
			t.Fatal(err)
		}
		k, err := keyed(t, sessionContents())
		if err != nil {
			t.Fatal(err)
		}
		r := make([]byte, payloadSize)
		rng.Read(r)
		if llr(s, uCounts, vCounts) > 0 {
			sealedRight++
		}
		if llr(k, uCounts, vCounts) <= 0 {
			keyedRight++
		}
		if llr(r, uCounts, vCounts) <= 0 {
			randomRight++
		}
	}
	accuracy := float64(sealedRight+keyedRight) / (2 * n)
	t.Logf("one payload: sealed told from keyed %.1f%% of the time (sealed called sealed %d/%d, keyed called keyed %d/%d)",
		100*accuracy, sealedRight, n, keyedRight, n)
	if accuracy < 0.8 {
		t.Fatalf("the distinguisher is right %.2f of the time: it should see ML-KEM's compression", accuracy)
	}
	// Keyed payloads and random bytes look alike to it.
	if d := float64(keyedRight-randomRight) / n; math.Abs(d) > 0.1 {
		t.Fatalf("keyed payloads called random %d/%d times, random bytes %d/%d", keyedRight, n, randomRight, n)
	}
}
