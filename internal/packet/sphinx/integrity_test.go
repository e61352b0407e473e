package sphinx

import (
	"bytes"
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

// TestHeaderBitFlips flips every bit of the header as it arrives at every hop
// of a 5-hop path (small geometry): the hop that sees it must reject it, with
// ErrVersion for the two version bytes and ErrMAC for any other bit.
func TestHeaderBitFlips(t *testing.T) {
	f, err := New(vectorGeometry)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{30}))
	nodes := testNetwork(t, rng, 5)
	path, _, _ := randomPath(rng, nodes, 5, false)
	packet, err := f.NewPacket(seededReader{rng}, path, []byte("ceasefire?"))
	if err != nil {
		t.Fatal(err)
	}
	h := vectorGeometry.HeaderLength()
	for i := range path {
		arriving := arrivingAt(t, f, nodes, path, packet, i)
		key := privateKeyOf(t, nodes, path[i].ID)
		p := make([]byte, len(arriving))
		for bit := 0; bit < 8*h; bit++ {
			copy(p, arriving)
			p[bit/8] ^= 1 << (bit % 8)
			want := ErrMAC
			if bit < 8*versionLength {
				want = ErrVersion
			}
			if _, err := f.Unwrap(key, p); !errors.Is(err, want) {
				t.Fatalf("hop %d, header bit %d flipped: %v, want %v", i, bit, err, want)
			}
		}
	}
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
		{"small", vectorGeometry, 0},
		{"default", DefaultGeometry, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.g)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewChaCha8([32]byte{31}))
			nodes := testNetwork(t, rng, 5)
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
	f, err := New(vectorGeometry)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{32}))
	nodes := testNetwork(t, rng, 2)
	path := []PathHop{{ID: nodes[0].id, PublicKey: nodes[0].pub, Commands: Commands{Recipient{}}}}
	packet, err := f.NewPacket(seededReader{rng}, path, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	min := vectorGeometry.HeaderLength() + 33
	for _, n := range []int{0, 1, vectorGeometry.HeaderLength(), min - 1} {
		if _, err := f.Unwrap(&nodes[0].priv, bytes.Clone(packet[:n])); !errors.Is(err, ErrPacketTooShort) {
			t.Errorf("%d-byte packet: %v, want ErrPacketTooShort", n, err)
		}
	}
	if _, err := f.Unwrap(&nodes[1].priv, bytes.Clone(packet)); !errors.Is(err, ErrMAC) {
		t.Errorf("another node's key: %v, want ErrMAC", err)
	}
	lowOrder := bytes.Clone(packet)
	clear(lowOrder[versionLength : versionLength+GroupElementLength])
	if _, err := f.Unwrap(&nodes[0].priv, lowOrder); !errors.Is(err, ErrLowOrderPoint) {
		t.Errorf("all-zero alpha: %v, want ErrLowOrderPoint", err)
	}
	// A longer payload than the geometry's is not refused by Unwrap, only
	// by its tag (the payload is ciphered as a whole).
	longer := append(bytes.Clone(packet), 0)
	if _, err := f.Unwrap(&nodes[0].priv, longer); !errors.Is(err, ErrPayloadTag) {
		t.Errorf("longer packet: %v, want ErrPayloadTag", err)
	}
}

// TestReplayTag checks that a packet's replay tag is the same each time it is
// seen and differs between packets.
func TestReplayTag(t *testing.T) {
	f, err := New(vectorGeometry)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{33}))
	nodes := testNetwork(t, rng, 2)
	path := []PathHop{{ID: nodes[0].id, PublicKey: nodes[0].pub, Commands: Commands{Recipient{}}}}
	seen := map[[ReplayTagLength]byte]bool{}
	for range 20 {
		packet, err := f.NewPacket(seededReader{rng}, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := f.Unwrap(&nodes[0].priv, bytes.Clone(packet))
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Unwrap(&nodes[0].priv, bytes.Clone(packet))
		if err != nil {
			t.Fatal(err)
		}
		if a.ReplayTag != b.ReplayTag {
			t.Fatal("the same packet gave two replay tags")
		}
		if seen[a.ReplayTag] {
			t.Fatal("two packets gave the same replay tag")
		}
		seen[a.ReplayTag] = true
	}
}

// TestUnwrapAllocations checks that Unwrap makes a small fixed number of
// allocations that does not grow with the packet.
func TestUnwrapAllocations(t *testing.T) {
	var counts []float64
	for _, g := range []Geometry{{MaxHops: 5, UserPayloadLength: 103}, {MaxHops: 5, UserPayloadLength: 60000}} {
		f, err := New(g)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewChaCha8([32]byte{34}))
		nodes := testNetwork(t, rng, 2)
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
			if _, err := f.Unwrap(&nodes[0].priv, work); err != nil {
				t.Fatal(err)
			}
		}))
	}
	if counts[0] != counts[1] {
		t.Fatalf("Unwrap allocates %v times for a 611-byte packet and %v for a 60 KB one", counts[0], counts[1])
	}
	// Most are inside crypto/hkdf, crypto/hmac and x/crypto/blake2b.
	if counts[0] > 64 {
		t.Fatalf("Unwrap allocates %v times", counts[0])
	}
	t.Logf("Unwrap: %v allocations per call", counts[0])
}
