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
		s := mult(ephemeral[:], path[i].PublicKey[:])
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
	nodes := testNetwork(t, rng, 6)
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
		path := []PathHop{{}, {}}
		copy(path[0].PublicKey[:], honest.BytesMontgomery())
		copy(path[1].PublicKey[:], pub)
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
	f, err := New(vectorGeometry)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{22}))
	nodes := testNetwork(t, rng, 6)
	hop := func(i int, cmds ...Command) PathHop {
		return PathHop{ID: nodes[i].id, PublicKey: nodes[i].pub, Commands: cmds}
	}
	var rcpt Recipient
	var reply SURBReply
	delay := NodeDelay{Milliseconds: 5}
	var lowOrder PathHop
	lowOrder.PublicKey[0] = 1 // u = 1 has order 4
	lowOrder.Commands = Commands{rcpt}

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
		{"low-order key", []PathHop{lowOrder}, nil, "has low order"},
	} {
		_, err := f.NewPacket(seededReader{rng}, tc.path, tc.message)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	// A hop's 82 bytes: 65 for the next hop leave 17, so a 33-byte
	// recipient command does not fit at a forwarding hop even if allowed.
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
	for _, n := range []int{0, ReplyKeyLength, len(token) + 1, ReplyKeyLength * (vectorGeometry.MaxHops + 2)} {
		if _, err := f.DecryptSURBPayload(make([]byte, n), make([]byte, 135)); err == nil {
			t.Errorf("DecryptSURBPayload accepted a %d-byte token", n)
		}
	}
	if _, err := f.DecryptSURBPayload(token, make([]byte, 32)); err == nil {
		t.Error("DecryptSURBPayload accepted a 32-byte payload")
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
	for hops := 1; hops <= MaxHopsLimit; hops++ {
		g := Geometry{MaxHops: hops, UserPayloadLength: 1}
		if g.HeaderLength() != 2+32+82*hops+32 || g.keystreamLength() != 82*(hops+1) {
			t.Errorf("%d hops: header %d, keystream %d", hops, g.HeaderLength(), g.keystreamLength())
		}
	}
	for _, g := range []Geometry{{0, 100}, {MaxHopsLimit + 1, 100}, {5, 0}, {5, -1}} {
		if _, err := New(g); err == nil {
			t.Errorf("New(%+v) accepted an invalid geometry", g)
		}
	}
	if _, err := New(DefaultGeometry); err != nil {
		t.Fatal(err)
	}
}
