package sphinx

import (
	"crypto/ecdh"
	"math/rand/v2"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

// naiveHopKeys is the textbook construction, with crypto/ecdh as an
// independent X25519: hop i's secret is the node key times the ephemeral
// scalar, then blinded by every earlier hop's factor one multiplication at a
// time; alpha_i is alpha_{i-1} blinded by factor i-1.
func naiveHopKeys(t *testing.T, ephemeral *[32]byte, path []PathHop) ([][32]byte, []packetKeys) {
	t.Helper()
	x25519 := ecdh.X25519()
	mult := func(scalar []byte, point []byte) []byte {
		k, err := x25519.NewPrivateKey(scalar)
		if err != nil {
			t.Fatal(err)
		}
		p, err := x25519.NewPublicKey(point)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.ECDH(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	eph, err := x25519.NewPrivateKey(ephemeral[:])
	if err != nil {
		t.Fatal(err)
	}
	alphas := make([][32]byte, len(path))
	keys := make([]packetKeys, len(path))
	var factors [][]byte
	alpha := eph.PublicKey().Bytes()
	for i := range path {
		copy(alphas[i][:], alpha)
		s := mult(ephemeral[:], path[i].PublicKey.x25519[:])
		for _, bf := range factors {
			s = mult(bf, s)
		}
		deriveKeys(&keys[i], (*[32]byte)(s))
		var bf [32]byte
		keys[i].blindingFactor(&bf)
		factors = append(factors, bf[:])
		alpha = mult(bf[:], alpha)
	}
	return alphas, keys
}

// TestHopKeysMatchNaive checks the scalar-product construction against the
// textbook one on random paths of every length.
func TestHopKeysMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{20}))
	nodes := testNetwork(t, X25519, rng, 6)
	for trial := range 40 {
		n := 1 + trial%MaxHopsLimit
		path := make([]PathHop, n)
		for i := range path {
			node := nodes[rng.IntN(len(nodes))]
			path[i] = PathHop{ID: node.id, PublicKey: node.pub}
		}
		var ephemeral [32]byte
		fillRand(rng, ephemeral[:])
		alphas := make([][32]byte, n)
		keys := make([]packetKeys, n)
		if err := hopKeys(&ephemeral, path, alphas, keys); err != nil {
			t.Fatal(err)
		}
		wantAlphas, wantKeys := naiveHopKeys(t, &ephemeral, path)
		for i := range n {
			if alphas[i] != wantAlphas[i] {
				t.Fatalf("trial %d hop %d: alpha %x, want %x", trial, i, alphas[i], wantAlphas[i])
			}
			if keys[i] != wantKeys[i] {
				t.Fatalf("trial %d hop %d: keys differ from the naive construction", trial, i)
			}
		}
	}
}

// TestHopKeysSmallOrderComponent checks that a node key with a small-order
// component added gives the same secrets as the honest key (the cofactor
// multiplication removes the component, so nothing about the sender's scalar
// modulo 8 leaks), and that a purely small-order key is refused.
func TestHopKeysSmallOrderComponent(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{21}))
	var priv [32]byte
	fillRand(rng, priv[:])
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	honest := new(edwards25519.Point).ScalarBaseMult(s)
	// (sqrt(-1), 0) has order 4; its encoding is 32 zero bytes.
	torsion, err := new(edwards25519.Point).SetBytes(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	mixed := new(edwards25519.Point).Add(honest, torsion)

	var ephemeral [32]byte
	fillRand(rng, ephemeral[:])
	keysFor := func(pub []byte) ([]packetKeys, error) {
		// Made directly: ParsePublicKey refuses a purely small-order key
		// before creation would.
		path := []PathHop{{PublicKey: &PublicKey{}}, {PublicKey: &PublicKey{}}}
		copy(path[0].PublicKey.x25519[:], honest.BytesMontgomery())
		copy(path[1].PublicKey.x25519[:], pub)
		keys := make([]packetKeys, 2)
		err := hopKeys(&ephemeral, path, make([][32]byte, 2), keys)
		return keys, err
	}
	want, err := keysFor(honest.BytesMontgomery())
	if err != nil {
		t.Fatal(err)
	}
	got, err := keysFor(mixed.BytesMontgomery())
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != want[1] {
		t.Fatal("a small-order component in a node key changed the shared secret")
	}
	if _, err := keysFor(torsion.BytesMontgomery()); err == nil || !strings.Contains(err.Error(), "low order") {
		t.Fatalf("small-order node key: %v, want a low-order error", err)
	}
}

// TestInverseOfEight checks the constant against its definition.
func TestInverseOfEight(t *testing.T) {
	eight := mustScalar(append([]byte{8}, make([]byte, 31)...))
	one := mustScalar(append([]byte{1}, make([]byte, 31)...))
	if new(edwards25519.Scalar).Multiply(eight, inverseOfEight).Equal(one) != 1 {
		t.Fatal("8 · inverseOfEight ≠ 1 mod ℓ")
	}
}

// TestCreationRefusesBadInput checks every error packet and SURB creation
// names.
func TestCreationRefusesBadInput(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{22}))
		nodes := testNetwork(t, g.Scheme, rng, 6)
		hop := func(i int, cmds ...Command) PathHop {
			return PathHop{ID: nodes[i].id, PublicKey: nodes[i].pub, Commands: cmds}
		}
		var rcpt Recipient
		var reply SURBReply
		delay := NodeDelay{Milliseconds: 5}
		otherScheme := testNetwork(t, 1-g.Scheme, rng, 1)[0]

		for _, tc := range []struct {
			name    string
			path    []PathHop
			message []byte
			want    string
		}{
			{"empty path", nil, nil, "path of 0 hops"},
			{"too long", []PathHop{hop(0), hop(1), hop(2), hop(3), hop(4), hop(5, rcpt)}, nil, "path of 6 hops"},
			{"message too long", []PathHop{hop(0, rcpt)}, make([]byte, 104), "message of 104 bytes"},
			{"next hop supplied", []PathHop{hop(0, NextNodeHop{}), hop(1, rcpt)}, nil, "added by packet creation"},
			{"repeated type", []PathHop{hop(0, delay, delay), hop(1, rcpt)}, nil, "repeated node-delay"},
			{"no room", []PathHop{hop(0, delay, reply), hop(1, rcpt)}, nil, "commands take 87 bytes, more than the 82"},
			{"surb reply midway", []PathHop{hop(0, reply), hop(1, rcpt)}, nil, "hop 0: a SURB-reply command belongs"},
			{"recipient midway", []PathHop{hop(0, rcpt), hop(1, rcpt)}, nil, "commands take 98 bytes"},
			{"overfull last hop", []PathHop{hop(0, rcpt, Recipient{}, delay)}, nil, "repeated recipient"},
			{"surb reply forward", []PathHop{hop(0, rcpt, reply)}, nil, "SURB-reply command belongs"},
			{"nil command", []PathHop{hop(0, nil)}, nil, "nil command"},
			{"no key", []PathHop{{ID: nodes[0].id, Commands: Commands{rcpt}}}, nil, "has no " + g.Scheme.String() + " public key"},
			{"other scheme's key", []PathHop{{ID: nodes[0].id, PublicKey: otherScheme.pub, Commands: Commands{rcpt}}}, nil, "has no " + g.Scheme.String() + " public key"},
		} {
			_, err := f.NewPacket(seededReader{rng}, tc.path, tc.message)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
			}
		}

		// A hop's 82 bytes: 65 for the next hop leave 17, so a 33-byte
		// recipient command does not fit at a forwarding hop even if
		// allowed.
		if err := checkHopCommands(Commands{rcpt}, false); err == nil || !strings.Contains(err.Error(), "more than the 82") {
			t.Errorf("overfull hop: %v", err)
		}
		if _, _, err := f.NewSURB(seededReader{rng}, []PathHop{hop(0, rcpt)}); err == nil || !strings.Contains(err.Error(), "needs a SURB-reply") {
			t.Errorf("SURB without SURB-reply command: %v", err)
		}
		if _, _, err := f.NewPacketFromSURB(make([]byte, 10), nil); err == nil {
			t.Error("NewPacketFromSURB accepted a 10-byte SURB")
		}
		surb, token, err := f.NewSURB(seededReader{rng}, []PathHop{hop(0, rcpt, reply)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.NewPacketFromSURB(surb, make([]byte, 104)); err == nil {
			t.Error("NewPacketFromSURB accepted a message longer than the payload")
		}
		for _, n := range []int{0, ReplyKeyLength, len(token) + 1, ReplyKeyLength * (g.MaxHops + 2)} {
			if _, err := f.DecryptSURBPayload(make([]byte, n), make([]byte, 135)); err == nil {
				t.Errorf("DecryptSURBPayload accepted a %d-byte token", n)
			}
		}
		if _, err := f.DecryptSURBPayload(token, make([]byte, 32)); err == nil {
			t.Error("DecryptSURBPayload accepted a 32-byte payload")
		}
	})
}

// TestParsePublicKey checks the keys packet creation refuses to use: wrong
// length, a low-order X25519 part, an ML-KEM-768 key that fails FIPS 203's
// modulus check; and that a key's encoding round-trips.
func TestParsePublicKey(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{23}))
	for _, s := range Schemes {
		node := testNetwork(t, s, rng, 1)[0]
		encoded := node.pub.Bytes()
		if len(encoded) != s.PublicKeyLength() {
			t.Fatalf("%v: public key of %d bytes, want %d", s, len(encoded), s.PublicKeyLength())
		}
		parsed, err := ParsePublicKey(s, encoded)
		if err != nil || !parsed.Equal(node.pub) {
			t.Fatalf("%v: the encoding does not parse back: %v", s, err)
		}
		if _, err := ParsePublicKey(s, encoded[1:]); err == nil {
			t.Errorf("%v: a short key parsed", s)
		}
		if _, err := ParsePublicKey(1-s, encoded); err == nil {
			t.Errorf("%v: the key parsed as %v", s, 1-s)
		}
		for _, u := range lowOrderEncodings(t) {
			bad := append([]byte(nil), encoded...)
			copy(bad[len(bad)-32:], u)
			if _, err := ParsePublicKey(s, bad); err == nil || !strings.Contains(err.Error(), "low-order") {
				t.Errorf("%v: X25519 part %x: %v, want a low-order error", s, u, err)
			}
		}
	}
	// ML-KEM-768's encapsulation key is 384 coefficients per 384 bytes,
	// 12 bits each, which must be below q = 3329: 0xfff is not.
	bad := append([]byte(nil), testNetwork(t, XWing, rng, 1)[0].pub.Bytes()...)
	bad[0], bad[1] = 0xff, 0x0f
	if _, err := ParsePublicKey(XWing, bad); err == nil || !strings.Contains(err.Error(), "modulus check") {
		t.Errorf("ML-KEM key with a coefficient of 4095: %v, want a modulus-check error", err)
	}
	if _, err := ParsePublicKey(Scheme(9), make([]byte, 32)); err == nil {
		t.Error("a key of an unknown scheme parsed")
	}
}

// TestGeometry checks the geometry formulas and validation.
func TestGeometry(t *testing.T) {
	if h := vectorGeometry.HeaderLength(); h != 476 {
		t.Errorf("5-hop header %d bytes, want 476", h)
	}
	if n := vectorGeometry.PacketLength(); n != 611 {
		t.Errorf("vector packet %d bytes, want 611", n)
	}
	if n := vectorGeometry.SURBLength(); n != 684 {
		t.Errorf("5-hop SURB %d bytes, want 684", n)
	}
	// Katzenpost's X-Wing geometry (the kemsphinx vectors' README); the
	// SURB is longer by the LIONESS reply key (176 bytes, not 64).
	xwingVectors := Geometry{MaxHops: 5, UserPayloadLength: 103, Scheme: XWing}
	if h, n, s := xwingVectors.HeaderLength(), xwingVectors.PacketLength(), xwingVectors.SURBLength(); h != 7164 || n != 7299 || s != 7164+32+176 {
		t.Errorf("X-Wing, 5 hops, 103 bytes: header %d, packet %d, SURB %d; want 7164, 7299, 7372", h, n, s)
	}
	if n := (Geometry{MaxHops: 5, UserPayloadLength: 2000, Scheme: XWing}).PacketLength(); n != 9196 {
		t.Errorf("X-Wing, 5 hops, 2000 bytes: packet %d, want 9196", n)
	}
	for hops := 1; hops <= MaxHopsLimit; hops++ {
		g := Geometry{MaxHops: hops, UserPayloadLength: 1}
		if g.HeaderLength() != 2+32+82*hops+32 || g.keystreamLength() != 82*(hops+1) {
			t.Errorf("%d hops: header %d, keystream %d", hops, g.HeaderLength(), g.keystreamLength())
		}
		g.Scheme = XWing
		if g.HeaderLength() != 2+1120+1202*hops+32 || g.keystreamLength() != 1202*(hops+1) {
			t.Errorf("X-Wing, %d hops: header %d, keystream %d", hops, g.HeaderLength(), g.keystreamLength())
		}
	}
	for _, g := range []Geometry{{0, 100, X25519}, {MaxHopsLimit + 1, 100, X25519}, {5, 0, X25519}, {5, -1, X25519}, {5, 100, Scheme(2)}, {5, 100, mlkem768Vectors}} {
		if _, err := New(g); err == nil {
			t.Errorf("New(%+v) accepted an invalid geometry", g)
		}
	}
	if _, err := New(DefaultGeometry); err != nil {
		t.Fatal(err)
	}
}
