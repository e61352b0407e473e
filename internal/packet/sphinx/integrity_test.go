package sphinx

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"math/rand/v2"
	"testing"
)

// arrivingAt returns a copy of packet as it arrives at hop i of path.
func arrivingAt(t *testing.T, f *Format, nodes []testNode, path []PathHop, packet []byte, i int) []byte {
	t.Helper()
	p := bytes.Clone(packet)
	for j := range i {
		if _, err := f.Unwrap(privateKeyOf(t, nodes, path[j].ID), p); err != nil {
			t.Fatalf("hop %d: %v", j, err)
		}
	}
	return p
}

// TestHeaderBitFlips flips header bits as the header arrives at every hop of
// a 5-hop path (small geometry): the hop that sees it must reject it, with
// ErrVersion for the two version bytes and ErrMAC for any other bit. On the
// X25519 format every bit is flipped; on X-Wing's 7 KB header, one bit of
// every byte (chosen by a seeded generator), every byte at every hop.
func TestHeaderBitFlips(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{30}))
		nodes := testNetwork(t, g.Scheme, rng, 5)
		path, _, _ := randomPath(rng, nodes, 5, false)
		packet, err := f.NewPacket(seededReader{rng}, path, []byte("ceasefire?"))
		if err != nil {
			t.Fatal(err)
		}
		everyBit := g.Scheme == X25519
		h := g.HeaderLength()
		for i := range path {
			arriving := arrivingAt(t, f, nodes, path, packet, i)
			key := privateKeyOf(t, nodes, path[i].ID)
			p := make([]byte, len(arriving))
			for at := range h {
				bits := []int{0, 1, 2, 3, 4, 5, 6, 7}
				if !everyBit {
					bits = bits[rng.IntN(8):][:1]
				}
				for _, bit := range bits {
					copy(p, arriving)
					p[at] ^= 1 << bit
					want := ErrMAC
					if at < versionLength {
						want = ErrVersion
					}
					if _, err := f.Unwrap(key, p); !errors.Is(err, want) {
						t.Fatalf("hop %d, header byte %d bit %d flipped: %v, want %v", i, at, bit, err, want)
					}
				}
			}
		}
	})
}

// payloadFlipCheck flips one payload bit of a packet as it arrives at hop
// `at` and checks that the end detects it: the last hop of a forward packet
// with ErrPayloadTag, a SURB reply's creator likewise.
func payloadFlipCheck(t *testing.T, f *Format, nodes []testNode, path []PathHop, packet, token []byte, at, bit int) {
	t.Helper()
	p := arrivingAt(t, f, nodes, path, packet, at)
	p[f.Geometry().HeaderLength()+bit/8] ^= 1 << (bit % 8)
	for i := at; i < len(path); i++ {
		res, err := f.Unwrap(privateKeyOf(t, nodes, path[i].ID), p)
		if i < len(path)-1 {
			if err != nil {
				t.Fatalf("payload bit %d flipped before hop %d: hop %d failed: %v", bit, at, i, err)
			}
			continue
		}
		if token == nil {
			if !errors.Is(err, ErrPayloadTag) || res.Payload != nil {
				t.Fatalf("payload bit %d flipped before hop %d: last hop returned %v with %d payload bytes, want ErrPayloadTag", bit, at, err, len(res.Payload))
			}
			return
		}
		if err != nil {
			t.Fatalf("payload bit %d flipped before hop %d: last hop of a reply: %v", bit, at, err)
		}
		msg, err := f.DecryptSURBPayload(token, res.Payload)
		if !errors.Is(err, ErrPayloadTag) || msg != nil {
			t.Fatalf("payload bit %d flipped before hop %d: SURB decryption gave %v and %d bytes, want ErrPayloadTag", bit, at, err, len(msg))
		}
	}
}

// TestPayloadBitFlips flips payload bits (every bit on the small geometry,
// seeded samples on the production one), each at some hop of the path, for
// forward packets and SURB replies: the end must detect every one.
func TestPayloadBitFlips(t *testing.T) {
	for _, tc := range []struct {
		name    string
		g       Geometry
		samples int // 0: every bit
	}{
		{"small/x25519", vectorGeometry, 0},
		{"small/xwing", Geometry{MaxHops: 5, UserPayloadLength: 103, Scheme: XWing}, 0},
		{"default/x25519", Geometry{MaxHops: 5, UserPayloadLength: DefaultGeometry.UserPayloadLength}, 150},
		{"default/xwing", Geometry{MaxHops: 5, UserPayloadLength: DefaultGeometry.UserPayloadLength, Scheme: XWing}, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.g)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewChaCha8([32]byte{31}))
			nodes := testNetwork(t, tc.g.Scheme, rng, 5)
			path, _, _ := randomPath(rng, nodes, 5, false)
			packet, err := f.NewPacket(seededReader{rng}, path, []byte("yes"))
			if err != nil {
				t.Fatal(err)
			}
			surbPath, _, _ := randomPath(rng, nodes, 5, true)
			surb, token, err := f.NewSURB(seededReader{rng}, surbPath)
			if err != nil {
				t.Fatal(err)
			}
			reply, _, err := f.NewPacketFromSURB(surb, []byte("yes"))
			if err != nil {
				t.Fatal(err)
			}
			bits := 8 * tc.g.PayloadLength()
			n := bits
			if tc.samples > 0 {
				n = tc.samples
			}
			for k := range n {
				bit := k
				if tc.samples > 0 {
					bit = rng.IntN(bits)
				}
				payloadFlipCheck(t, f, nodes, path, packet, nil, k%len(path), bit)
				payloadFlipCheck(t, f, nodes, surbPath, reply, token, k%len(surbPath), bit)
			}
		})
	}
}

// TestUnwrapRejects checks Unwrap's other errors.
func TestUnwrapRejects(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{32}))
		nodes := testNetwork(t, g.Scheme, rng, 2)
		path := []PathHop{{ID: nodes[0].id, PublicKey: nodes[0].pub, Commands: Commands{Recipient{}}}}
		packet, err := f.NewPacket(seededReader{rng}, path, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		min := g.HeaderLength() + 33
		for _, n := range []int{0, 1, g.HeaderLength(), min - 1} {
			if _, err := f.Unwrap(nodes[0].priv, bytes.Clone(packet[:n])); !errors.Is(err, ErrPacketTooShort) {
				t.Errorf("%d-byte packet: %v, want ErrPacketTooShort", n, err)
			}
		}
		if _, err := f.Unwrap(nodes[1].priv, bytes.Clone(packet)); !errors.Is(err, ErrMAC) {
			t.Errorf("another node's key: %v, want ErrMAC", err)
		}
		// An all-zero X25519 element: alpha, or the X25519 half of the
		// X-Wing ciphertext (which X-Wing itself would accept).
		elementEnd := versionLength + g.Scheme.elementLength()
		for _, u := range lowOrderEncodings(t) {
			lowOrder := bytes.Clone(packet)
			copy(lowOrder[elementEnd-32:elementEnd], u)
			if _, err := f.Unwrap(nodes[0].priv, lowOrder); !errors.Is(err, ErrLowOrderPoint) {
				t.Errorf("low-order element %x: %v, want ErrLowOrderPoint", u, err)
			}
		}
		// A longer payload than the geometry's is not refused by Unwrap,
		// only by its tag (the payload is ciphered as a whole).
		longer := append(bytes.Clone(packet), 0)
		if _, err := f.Unwrap(nodes[0].priv, longer); !errors.Is(err, ErrPayloadTag) {
			t.Errorf("longer packet: %v, want ErrPayloadTag", err)
		}
		var other Format
		other.geometry = g
		other.geometry.Scheme = 1 - g.Scheme
		if _, err := other.Unwrap(nodes[0].priv, bytes.Clone(packet)); err == nil || errors.Is(err, ErrMAC) {
			t.Errorf("a %v key on a %v format: %v, want a refusal before any cryptography", g.Scheme, other.geometry.Scheme, err)
		}
	})
}

// lowOrderEncodings are the encodings of low-order X25519 points, canonical
// and not.
func lowOrderEncodings(t *testing.T) [][]byte {
	var out [][]byte
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	} {
		out = append(out, unhex(t, h))
	}
	return out
}

// TestReplayTag checks that a packet's replay tag is the same each time it is
// seen, differs between packets, and is SHA-512/256 of the element (alpha
// or the whole KEM ciphertext).
func TestReplayTag(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{33}))
		nodes := testNetwork(t, g.Scheme, rng, 2)
		path := []PathHop{{ID: nodes[0].id, PublicKey: nodes[0].pub, Commands: Commands{Recipient{}}}}
		seen := map[[ReplayTagLength]byte]bool{}
		for range 20 {
			packet, err := f.NewPacket(seededReader{rng}, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := f.Unwrap(nodes[0].priv, bytes.Clone(packet))
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.Unwrap(nodes[0].priv, bytes.Clone(packet))
			if err != nil {
				t.Fatal(err)
			}
			if a.ReplayTag != b.ReplayTag {
				t.Fatal("the same packet gave two replay tags")
			}
			if a.ReplayTag != sha512.Sum512_256(packet[versionLength:versionLength+g.Scheme.elementLength()]) {
				t.Fatal("the replay tag is not SHA-512/256 of the element")
			}
			if seen[a.ReplayTag] {
				t.Fatal("two packets gave the same replay tag")
			}
			seen[a.ReplayTag] = true
		}
	})
}

// TestUnwrapAllocations checks that Unwrap makes a small fixed number of
// allocations that does not grow with the packet.
func TestUnwrapAllocations(t *testing.T) {
	var counts []float64
	for _, g := range []Geometry{{MaxHops: 5, UserPayloadLength: 103}, {MaxHops: 5, UserPayloadLength: 60000},
		{MaxHops: 5, UserPayloadLength: 103, Scheme: XWing}, {MaxHops: 5, UserPayloadLength: 60000, Scheme: XWing}} {
		f, err := New(g)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewChaCha8([32]byte{34}))
		nodes := testNetwork(t, g.Scheme, rng, 2)
		path := []PathHop{
			{ID: nodes[0].id, PublicKey: nodes[0].pub, Commands: Commands{NodeDelay{Milliseconds: 1}}},
			{ID: nodes[1].id, PublicKey: nodes[1].pub, Commands: Commands{Recipient{}}},
		}
		packet, err := f.NewPacket(seededReader{rng}, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		work := make([]byte, len(packet))
		counts = append(counts, testing.AllocsPerRun(20, func() {
			copy(work, packet)
			if _, err := f.Unwrap(nodes[0].priv, work); err != nil {
				t.Fatal(err)
			}
		}))
	}
	for i := 0; i < len(counts); i += 2 {
		if counts[i] != counts[i+1] {
			t.Fatalf("Unwrap allocates %v times for a short packet and %v for a 60 KB one", counts[i], counts[i+1])
		}
		// Most are inside crypto/hkdf, crypto/hmac and x/crypto/blake2b.
		if counts[i] > 64 {
			t.Fatalf("Unwrap allocates %v times", counts[i])
		}
	}
	t.Logf("Unwrap: %v allocations per call (X25519), %v (X-Wing)", counts[0], counts[2])
}
