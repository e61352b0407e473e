package x25519

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"flag"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

var million = flag.Bool("million", false, "run RFC 7748's 1,000,000-iteration check (minutes; not under -race)")

func fromHex(t testing.TB, s string) *[Size]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return (*[Size]byte)(b)
}

// TestRFC7748Vectors checks the two single-multiplication vectors of
// RFC 7748 section 5.2.
func TestRFC7748Vectors(t *testing.T) {
	for _, tc := range []struct{ scalar, u, want string }{
		{
			"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
		},
		{
			"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
		},
	} {
		var got [Size]byte
		if err := ScalarMult(&got, fromHex(t, tc.scalar), fromHex(t, tc.u)); err != nil {
			t.Fatal(err)
		}
		if want := fromHex(t, tc.want); got != *want {
			t.Errorf("X25519(%s, %s) = %x, want %s", tc.scalar, tc.u, got, tc.want)
		}
	}
}

// TestRFC7748Iterated runs the iterated check of RFC 7748 section 5.2: k and u
// start as the base point, then k, u = X25519(k, u), k.
func TestRFC7748Iterated(t *testing.T) {
	checkpoints := map[int]string{
		1:    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
		1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
	}
	last := 1000
	if *million {
		checkpoints[1000000] = "7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424"
		last = 1000000
	}
	var k, u [Size]byte
	k[0], u[0] = 9, 9
	for i := 1; i <= last; i++ {
		var r [Size]byte
		if err := ScalarMult(&r, &k, &u); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		u, k = k, r
		if want, ok := checkpoints[i]; ok && k != *fromHex(t, want) {
			t.Fatalf("after %d iterations k = %x, want %s", i, k, want)
		}
	}
}

// TestDifferentialECDH compares the ladder with crypto/ecdh on seeded random
// scalars and points (points made as public keys, plus raw random bytes,
// which may be on the twist).
func TestDifferentialECDH(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := 0; i < 300; i++ {
		var scalar, point [Size]byte
		fill(rng, scalar[:])
		fill(rng, point[:])
		if i%2 == 0 {
			var other [Size]byte
			fill(rng, other[:])
			k, err := ecdh.X25519().NewPrivateKey(other[:])
			if err != nil {
				t.Fatal(err)
			}
			copy(point[:], k.PublicKey().Bytes())
		}
		priv, err := ecdh.X25519().NewPrivateKey(scalar[:])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ecdh.X25519().NewPublicKey(point[:])
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := priv.ECDH(pub)
		var got [Size]byte
		gotErr := ScalarMult(&got, &scalar, &point)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("scalar %x point %x: ecdh error %v, ladder error %v", scalar, point, wantErr, gotErr)
		}
		if wantErr == nil && !bytes.Equal(got[:], want) {
			t.Fatalf("scalar %x point %x: ladder %x, ecdh %x", scalar, point, got, want)
		}

		var base [Size]byte
		if err := ScalarBaseMult(&base, &scalar); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(base[:], priv.PublicKey().Bytes()) {
			t.Fatalf("ScalarBaseMult(%x) = %x, ecdh public key %x", scalar, base, priv.PublicKey().Bytes())
		}
	}
}

// TestUnclamped checks the unclamped ladder two ways: on a clamped scalar it
// equals X25519, and on any 256-bit k and the base point it equals
// (k mod l)·B computed with edwards25519.
func TestUnclamped(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	var nine [Size]byte
	nine[0] = 9
	for i := 0; i < 200; i++ {
		var k, point [Size]byte
		fill(rng, k[:])
		fill(rng, point[:])

		clamped := k
		clamped[0] &= 248
		clamped[31] &= 127
		clamped[31] |= 64
		var a, b [Size]byte
		errA := ScalarMult(&a, &k, &point)
		errB := ScalarMultUnclamped(&b, &clamped, &point)
		if (errA == nil) != (errB == nil) || a != b {
			t.Fatalf("k %x point %x: clamped %x (%v), unclamped on clamped scalar %x (%v)", k, point, a, errA, b, errB)
		}

		var wide [64]byte
		copy(wide[:], k[:])
		s, err := edwards25519.NewScalar().SetUniformBytes(wide[:])
		if err != nil {
			t.Fatal(err)
		}
		var viaLadder, viaTable [Size]byte
		errL := ScalarMultUnclamped(&viaLadder, &k, &nine)
		errT := ScalarBaseMultScalar(&viaTable, s)
		if (errL == nil) != (errT == nil) || viaLadder != viaTable {
			t.Fatalf("k %x: ladder %x (%v), table %x (%v)", k, viaLadder, errL, viaTable, errT)
		}
	}
}

// TestLowOrderPoints checks that every low-order u-coordinate, including
// the non-canonical encodings p-1, p and p+1, gives ErrLowOrder, as RFC 7748
// section 6.1 asks. (Encodings with bit 255 set are not listed: the bit is
// masked, so they name other points.)
func TestLowOrderPoints(t *testing.T) {
	lowOrder := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}
	scalar := fromHex(t, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	for _, p := range lowOrder {
		var out [Size]byte
		if err := ScalarMult(&out, scalar, fromHex(t, p)); err != ErrLowOrder {
			t.Errorf("ScalarMult(point %s) error = %v, want ErrLowOrder", p, err)
		}
		var eight [Size]byte
		eight[0] = 8
		if err := ScalarMultUnclamped(&out, &eight, fromHex(t, p)); err != ErrLowOrder {
			t.Errorf("ScalarMultUnclamped(8, point %s) error = %v, want ErrLowOrder", p, err)
		}
		if !IsLowOrder(fromHex(t, p)) {
			t.Errorf("IsLowOrder(%s) = false", p)
		}
		withHighBit := *fromHex(t, p)
		withHighBit[Size-1] |= 0x80
		if !IsLowOrder(&withHighBit) {
			t.Errorf("IsLowOrder(%s with bit 255 set) = false", p)
		}
	}
}

// TestIsLowOrderAgreesWithLadder checks IsLowOrder against the ladder on
// points that are not low order: random ones, and each listed point plus or
// minus one. (That the list is complete is the group-order argument in
// IsLowOrder's comment; TestLowOrderPoints checks each listed point gives
// zero.)
func TestIsLowOrderAgreesWithLadder(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	scalar := fromHex(t, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	var points [][Size]byte
	for range 2000 {
		var p [Size]byte
		fill(rng, p[:])
		points = append(points, p)
	}
	for _, p := range lowOrderPoints {
		for _, delta := range []byte{1, 0xff} {
			q := [Size]byte(p)
			q[0] += delta
			points = append(points, q)
		}
	}
	for _, p := range points {
		var out [Size]byte
		zero := ScalarMult(&out, scalar, &p) != nil
		if IsLowOrder(&p) != zero {
			t.Fatalf("point %x: IsLowOrder = %v, ladder gives zero = %v", p, IsLowOrder(&p), zero)
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// BenchmarkLadder and BenchmarkECDH compare this package's ladder with
// crypto/ecdh's ECDH (keys made once) in one run.
func BenchmarkLadder(b *testing.B) {
	scalar := fromHex(b, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	point := fromHex(b, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	var out [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := ScalarMult(&out, scalar, point); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLadderUnclamped is the ladder over all 256 bits of an
// unclamped scalar (Sphinx's blinding and creation), over CIRCL's field.
func BenchmarkLadderUnclamped(b *testing.B) {
	scalar := fromHex(b, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	point := fromHex(b, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	var out [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := ScalarMultUnclamped(&out, scalar, point); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkECDH(b *testing.B) {
	priv, err := ecdh.X25519().NewPrivateKey(fromHex(b, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")[:])
	if err != nil {
		b.Fatal(err)
	}
	pub, err := ecdh.X25519().NewPublicKey(fromHex(b, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScalarBaseMult(b *testing.B) {
	scalar := fromHex(b, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	var out [Size]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := ScalarBaseMult(&out, scalar); err != nil {
			b.Fatal(err)
		}
	}
}
